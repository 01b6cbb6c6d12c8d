"""Writing report rows as CSV, as an Excel workbook or as a plain-text table."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec

from analysis.queries import REASONS
from analysis.services import QUARTERLY_COLUMNS, QuarterlyReport, report_cut_off
from outcomes.schemas import FeedbackReport
from programme.platform.quarters import Quarter


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


# --- downloads: CSV and Excel workbooks of the reports ---

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX}
SHARES = ("share", "share_engaged", "rate", "ci_low", "ci_high")
"""Columns holding a proportion: a percentage in the workbook."""


@dataclass(frozen=True)
class Sheet:
    title: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Download:
    """One report as a file: its tables, the definitions used, when and on what data."""

    report: str
    title: str
    sheets: list[Sheet]
    notes: list[str]
    generated_on: date
    data_cut_off: date
    first: Quarter | None
    last: Quarter | None

    def filename(self, extension: str) -> str:
        span = f"{self.first.label}_to_{self.last.label}" if self.first and self.last else "all"
        return f"{self.report}_{span}.{extension}".replace(" ", "_")

    @property
    def stamp(self) -> str:
        return (
            f"Generated on {self.generated_on.isoformat()}; data cut-off "
            f"{self.data_cut_off.isoformat()} (events dated up to that day)."
        )


def csv_download(download: Download) -> str:
    """The first table as a plain CSV table (header first), then each further table under
    its title, the definitions, and the generated-on and cut-off lines, each block after
    an empty line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for i, sheet in enumerate(download.sheets):
        if i:
            writer.writerow([])
            writer.writerow([sheet.title])
        writer.writerow(sheet.columns)
        for row in sheet.rows:
            writer.writerow([_cell(row.get(column)) for column in sheet.columns])
    writer.writerow([])
    writer.writerow(["Definitions"])
    for note in download.notes:
        writer.writerow([note])
    writer.writerow([])
    writer.writerow(["generated_on", download.generated_on.isoformat()])
    writer.writerow(["data_cut_off", download.data_cut_off.isoformat()])
    return out.getvalue()


def xlsx_download(download: Download) -> bytes:
    """One sheet per table, then the definitions: numbers as numbers, shares as
    percentages, suppressed counts as the text '<5'. Each sheet opens with its title and
    the generated-on and data cut-off line. Slow for big tables: call it off the loop."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    for sheet in download.sheets:
        page = book.create_sheet(_sheet_title(sheet.title))
        page.append([f"{download.title}: {sheet.title}"])
        page["A1"].font = Font(bold=True, size=13)
        page.append([download.stamp])
        page.append([])
        page.append(list(sheet.columns))
        for cell in page[page.max_row]:
            cell.font = bold
        for row in sheet.rows:
            page.append([_xlsx_value(row.get(column)) for column in sheet.columns])
            for column, cell in zip(sheet.columns, page[page.max_row], strict=True):
                if column in SHARES and isinstance(cell.value, float):
                    cell.number_format = "0.0%"
        for i, column in enumerate(sheet.columns, start=1):
            width = max(len(column), *(len(str(r.get(column) or "")) for r in sheet.rows), 6)
            page.column_dimensions[page.cell(4, i).column_letter].width = min(width + 2, 40)
        page.freeze_panes = "A5"
    notes = book.create_sheet("Definitions")
    notes.append([download.title])
    notes["A1"].font = Font(bold=True, size=13)
    notes.append([download.stamp])
    notes.append([])
    for note in download.notes:
        notes.append([note])
    notes.column_dimensions["A"].width = 120
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet_title(title: str) -> str:
    return "".join(c for c in title if c not in "[]:*?/\\")[:31]


def _xlsx_value(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str):
        return value
    return str(value)


def quarterly_download(
    report: QuarterlyReport, first: Quarter, last: Quarter, today: date, notes: list[str]
) -> Download:
    """The published quarterly report: its table and its rates, with the definitions."""
    key = (report.by,) if report.by else ()
    rates: list[dict[str, Any]] = []
    for group, completion, engagement in [
        ("All", report.completion_rate, report.engagement_rate),
        *((g.group, g.completion_rate, g.engagement_rate) for g in report.group_rates),
    ]:
        for name, rate in (("completion", completion), ("engagement", engagement)):
            rates.append(
                {
                    **({report.by: group} if report.by else {}),
                    "rate": name,
                    "numerator": rate.numerator,
                    "denominator": rate.denominator,
                    "share": rate.rate,
                    "ci_low": rate.ci_low,
                    "ci_high": rate.ci_high,
                }
            )
    rate_columns = ("rate", "numerator", "denominator", "share", "ci_low", "ci_high")
    return Download(
        report="quarterly",
        title="Quarterly figures" + (f" by {report.by.replace('_', ' ')}" if report.by else ""),
        sheets=[
            Sheet("Quarterly", (*key, *QUARTERLY_COLUMNS), report.rows),
            Sheet("Rates", (*key, *rate_columns), rates),
        ],
        notes=notes,
        generated_on=today,
        data_cut_off=report_cut_off(last, today),
        first=first,
        last=last,
    )


def quality_columns(by: str) -> tuple[str, ...]:
    return (by, *QUALITY_COLUMNS[1:])


def quality_download(
    rows: list[dict[str, Any]],
    by: str,
    first: Quarter,
    last: Quarter,
    today: date,
    notes: list[str],
) -> Download:
    return Download(
        report="referral-quality",
        title=f"Referral quality by {by.replace('_', ' ')}",
        sheets=[Sheet("Referral quality", quality_columns(by), flatten_quality(rows))],
        notes=notes,
        generated_on=today,
        data_cut_off=report_cut_off(last, today),
        first=first,
        last=last,
    )


FEEDBACK_COLUMNS = (
    "quarter",
    "stage",
    "responded",
    "stopped_or_reduced",
    "share",
    "ci_low",
    "ci_high",
)


def feedback_download(
    report: FeedbackReport, first: Quarter | None, last: Quarter | None, today: date
) -> Download:
    key = (report.by,) if report.by else ()
    rows = [
        {**({report.by: cell.group} if report.by else {}), **msgspec.structs.asdict(cell)}
        for cell in report.rows
    ]
    rows.append(
        {
            **({report.by: "All"} if report.by else {}),
            "quarter": "all",
            "stage": "all",
            "responded": report.total_responded,
            "stopped_or_reduced": report.total_stopped_or_reduced,
            "share": report.total_share,
            "ci_low": report.total_ci_low,
            "ci_high": report.total_ci_high,
        }
    )
    return Download(
        report="victim-feedback",
        title="What victims and survivors say"
        + (f" by {report.by.replace('_', ' ')}" if report.by else ""),
        sheets=[Sheet("Victim feedback", (*key, *FEEDBACK_COLUMNS), rows)],
        notes=report.notes,
        generated_on=today,
        data_cut_off=report_cut_off(last, today),
        first=first,
        last=last,
    )
