"""The cohort's rows as PostgreSQL's binary COPY sends them, decoded into columns.

``queries.COHORT_COPY_SQL`` sends every field of every row, none of them NULL (what is
missing is said in one bit mask), so every row has the same length and a block of rows is
one fixed-layout numpy record array: no text to parse, no Python object per value. The
referral, the person and the agency come as their 16 bytes (the agency is named from the
agency table in numpy: looked up in SQL once per row, it cost more than the rest);
gender, risk level and local authority as a 64-bit hash of the text, named afterwards
from one row holding each hash (a handful of rows: ``exemplar_rows``).

Pure: bytes in, arrays out; the services do the reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
"""The first 11 bytes of every binary COPY (PostgreSQL's "File Formats", COPY BINARY)."""

HEADER = len(SIGNATURE) + 8
"""The signature, a 32-bit flags word and the 32-bit length of a header extension."""

TRAILER = b"\xff\xff"
"""A field count of -1 ends the stream."""

FIELDS: tuple[tuple[str, str], ...] = (
    ("referral", ">u8,(2,)"),
    ("person", ">u8,(2,)"),
    ("agency", ">u8,(2,)"),
    ("gender", ">i8"),
    ("risk_level", ">i8"),
    ("local_authority", ">i8"),
    ("born_year", ">i4"),
    ("born_month_day", ">i4"),
    ("received_year", ">i4"),
    ("received_month_day", ">i4"),
    ("prior_incidents", ">i4"),
    ("days_available", ">i4"),
    ("days_to_engaged", ">i4"),
    ("days_to_completed", ">i4"),
    ("days_to_reoffence", ">i4"),
    ("substance_misuse", ">i2"),
    ("mental_health", ">i2"),
    ("children_in_household", ">i2"),
    ("missing", ">i4"),
)
"""``COHORT_COPY_SQL``'s columns, in order, with their binary types (big-endian): uuid x 3,
int8 x 3, int4 x 9, int2 x 3, int4."""


def _row_type() -> np.dtype:
    parts: list[tuple] = [("fields", ">i2")]
    for name, kind in FIELDS:
        parts.append((f"{name}_length", ">i4"))
        if kind.endswith(",(2,)"):
            parts.append((name, kind.split(",")[0], (2,)))
        else:
            parts.append((name, kind))
    return np.dtype(parts)


ROW = _row_type()
"""One row as it comes: the field count, then each field's length and its value."""

NULLABLE = (
    "born_year",
    "born_month_day",
    "received_year",
    "received_month_day",
    "prior_incidents",
    "days_to_engaged",
    "days_to_completed",
    "days_to_reoffence",
    "gender",
    "risk_level",
    "local_authority",
)
"""The fields that may be missing, by their bit in ``missing`` (1, 2, 4, ... in this order,
as ``COHORT_COPY_SQL`` sums them)."""

HASHED = ("gender", "risk_level", "local_authority")
YES_NO = ("substance_misuse", "mental_health", "children_in_household")
"""Sent as 0 (no), 1 (yes) or 2 (not recorded)."""

BLOCK_BYTES = 1 << 23
"""Rows are decoded about every 8 MB as they arrive, so the raw stream is never held
whole (at a million referrals it is 170 MB against 80 MB decoded)."""


class CohortStream:
    """Feed it the COPY's bytes as they come; ``columns()`` at the end."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._started = False
        self._blocks: list[dict[str, np.ndarray]] = []

    def feed(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= BLOCK_BYTES:
            self._decode()

    def _decode(self) -> None:
        start = 0
        if not self._started:
            if len(self._pending) < HEADER:
                return
            if bytes(self._pending[: len(SIGNATURE)]) != SIGNATURE:
                raise RuntimeError("the cohort did not come as a binary COPY")
            extension = int.from_bytes(self._pending[HEADER - 4 : HEADER], "big")
            start = HEADER + extension
            self._started = True
        count = (len(self._pending) - start) // ROW.itemsize
        if count:
            rows = np.frombuffer(self._pending, dtype=ROW, count=count, offset=start)
            self._blocks.append(_block(rows))
            del rows  # the bytearray cannot shrink while a view of it lives
        del self._pending[: start + count * ROW.itemsize]

    def columns(self) -> dict[str, np.ndarray]:
        """Every field as one native array (the uuids as n x 2 unsigned 64-bit halves)."""
        self._decode()
        if bytes(self._pending) != TRAILER:
            raise RuntimeError("the cohort's COPY ended part-way through a row")
        names = [name for name, _ in FIELDS]
        if not self._blocks:
            self._blocks.append(_block(np.empty(0, dtype=ROW)))
        out = {name: np.concatenate([block[name] for block in self._blocks]) for name in names}
        self._blocks.clear()
        return out


def _block(rows: np.ndarray) -> dict[str, np.ndarray]:
    # Every row must be the layout above: the right number of fields, each of its size
    # and none NULL (a NULL's length is -1 and would shift every field after it).
    if not (rows["fields"] == len(FIELDS)).all():
        raise RuntimeError("the cohort came with another number of columns")
    for name, _ in FIELDS:
        size = ROW[name].itemsize
        if not (rows[f"{name}_length"] == size).all():
            raise RuntimeError(f"the cohort's {name} came NULL or of another size")
    native = {}
    for name, _ in FIELDS:
        column = rows[name]
        native[name] = column.astype(column.dtype.newbyteorder("="))
    native["substance_misuse"] = native["substance_misuse"].astype(np.int8)
    native["mental_health"] = native["mental_health"].astype(np.int8)
    native["children_in_household"] = native["children_in_household"].astype(np.int8)
    return native


def referral_order(referral: np.ndarray) -> np.ndarray | None:
    """The rows' order by referral id as PostgreSQL orders uuids (their bytes, first to
    last), or None when they already are in it."""
    high, low = referral[:, 0], referral[:, 1]
    if len(high) < 2:
        return None
    ascending = (high[1:] > high[:-1]) | ((high[1:] == high[:-1]) & (low[1:] >= low[:-1]))
    if ascending.all():
        return None
    return np.lexsort((low, high))


def _first_appearances(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's number in order of first appearance, and where each first appears."""
    codes, _ = pd.factorize(values)
    so_far = np.maximum.accumulate(np.r_[-1, codes[:-1]])
    return codes, np.flatnonzero(codes > so_far)


def _uuid_codes(halves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_first_appearances`` of 16-byte ids given as two 64-bit halves."""
    high, low = halves[:, 0], halves[:, 1]
    if len(high) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    codes, first = _first_appearances(high)
    # The first half alone almost always tells ids apart; check that the second half is
    # the same wherever the first is, and otherwise number the whole 16 bytes.
    if not np.array_equal(low, low[first][codes]):
        whole = np.ascontiguousarray(halves).view(np.dtype((np.void, 16))).ravel()
        _, inverse = np.unique(whole, return_inverse=True)
        codes, first = _first_appearances(inverse.ravel())
    return codes.astype(np.int64), first


def person_codes(person: np.ndarray) -> np.ndarray:
    """One whole number per person (the same number for the same person, in order of first
    appearance): the clusters only need to tell people apart, not 36-character strings."""
    return _uuid_codes(person)[0]


def agency_positions(agency: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """Each row's agency as its place in ``ids`` (the agencies' uuids as integers), from 1,
    or 0 for an agency not there (as ``array_position``)."""
    codes, first = _uuid_codes(agency)
    place = {value: k + 1 for k, value in enumerate(ids)}
    found = np.array(
        [place.get((int(agency[row, 0]) << 64) | int(agency[row, 1]), 0) for row in first],
        dtype=np.int16,
    )
    return found[codes] if len(codes) else np.empty(0, dtype=np.int16)


def exemplar_rows(columns: Mapping[str, np.ndarray]) -> list[int]:
    """One row for each gender, risk level and local authority hash present: reading those
    rows' text names every hash."""
    missing = columns["missing"]
    rows: set[int] = set()
    for name in HASHED:
        present = (missing & _bit(name)) == 0
        if present.any():
            _, first = _first_appearances(columns[name][present])
            rows.update(np.flatnonzero(present)[first].tolist())
    return sorted(rows)


def uuid_text(halves: np.ndarray) -> str:
    """A uuid from its two 64-bit halves, written as PostgreSQL writes it."""
    value = f"{int(halves[0]):016x}{int(halves[1]):016x}"
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def _bit(name: str) -> int:
    return 1 << NULLABLE.index(name)


def _number(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Whole numbers, or floats with NaN where any is missing (as a CSV reader gives them)."""
    if not missing.any():
        return values.astype(np.int64)
    out = values.astype(float)
    out[missing] = np.nan
    return out


def _yes_no(values: np.ndarray) -> np.ndarray:
    """bool when every value is recorded; else objects True, False and None."""
    if (values != 2).all():
        return values == 1
    return np.array([False, True, None], dtype=object)[values]


def frame(
    columns: Mapping[str, np.ndarray],
    agencies: Sequence[str],
    names: Mapping[str, Mapping[int, str]],
    cohort_columns: Sequence[str],
) -> pd.DataFrame:
    """The cohort frame: ``cohort_columns`` in order, the person as a whole number, text as
    objects (None where missing) pointing at a few strings, agency names by position in
    ``agencies`` (``columns["agency"]`` from ``agency_positions``), ``names`` each text
    hash's value."""
    missing = columns["missing"]
    out: dict[str, np.ndarray] = {}
    for name in cohort_columns:
        if name == "person":
            out[name] = person_codes(columns["person"])
        elif name == "agency":
            out[name] = np.array([None, *agencies], dtype=object)[columns["agency"]]
        elif name in HASHED:
            present = (missing & _bit(name)) == 0
            codes = np.full(len(missing), -1, dtype=np.intp)  # -1: the last entry, None
            codes[present], hashes = pd.factorize(columns[name][present])
            lookup = np.array([*(names[name][int(h)] for h in hashes), None], dtype=object)
            out[name] = lookup[codes]
        elif name in YES_NO:
            out[name] = _yes_no(columns[name])
        elif name in NULLABLE:
            out[name] = _number(columns[name], (missing & _bit(name)) != 0)
        else:
            out[name] = columns[name].astype(np.int64)
    return pd.DataFrame(out, copy=False)
