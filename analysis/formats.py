"""Writing report rows as CSV or as a plain-text table."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from analysis.queries import REASONS


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def to_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    body = [
        "  ".join(
            v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    return "\n".join([line, "-" * len(line), *body]) + "\n"


def flatten_quality(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Referral-quality rows with each return reason as its own column."""
    return [{**{k: v for k, v in row.items() if k != "reasons"}, **row["reasons"]} for row in rows]


QUALITY_COLUMNS = (
    "agency",
    "quarter",
    "received",
    "accepted",
    "returned",
    *REASONS,
    "mean_quality_score",
    "engaged",
    "share_engaged",
)
