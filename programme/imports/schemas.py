"""What an import answers: one report shape for every kind of file."""

from __future__ import annotations

from datetime import date

import msgspec


class RowProblem(msgspec.Struct, frozen=True):
    """One problem with one line of a file (line 1 is the header)."""

    line: int
    code: str
    field: str
    message: str


class ReturnedRowReport(msgspec.Struct, frozen=True):
    """A row recorded as a returned referral: its line, why, and what in it failed."""

    line: int
    reasons: list[str]
    """The return reasons the referral-quality report counts (``consent_missing``, ...)."""
    problems: list[RowProblem]


class ImportReport(msgspec.Struct):
    """The outcome of importing one file, whatever it holds."""

    imported: int
    already_present: int
    """Rows imported before; re-importing a file adds nothing."""
    refused: int
    """Rows with errors that were not imported."""
    warnings: list[RowProblem]
    errors: list[RowProblem]
    returned: int = 0
    """Referrals only: rows recorded as returned referrals (no consent, or failing intake)."""
    agencies_created: list[str] = msgspec.field(default_factory=list)
    """Referrals only: agencies named in the file that were not yet known."""
    older_than_backdate_limit: int = 0
    """Referrals only: imported rows received more than ``INSPIRE_BACKDATE_DAYS`` ago, which
    the API would refuse (``referrals.rules.backdated``); the import is their way in."""
    after_referral: int = 0
    """Police incidents only: imported incidents dated after one of the person's referrals."""
    extracted_on: date | None = None
    """Police incidents only: the day the extract was taken, as recorded (stated with the
    import, else the latest offence date in the file); the analysis's data cut-off."""
    returned_rows: list[ReturnedRowReport] = msgspec.field(default_factory=list)
    """Referrals only: each row counted in ``returned``, by line, with its reasons."""
    checked_only: bool = False
    """True for a check (``dry_run``): nothing was written; the counts say what would be."""
    locked_quarters: list[str] = msgspec.field(default_factory=list)
    """Reported (locked) quarters the rows are dated in: importing them needs an override."""


class ColumnDefinition(msgspec.Struct, frozen=True):
    """One column of an import file, as the import's checks read it."""

    name: str
    type: str
    """``text``, ``date``, ``choice``, ``yes_no``, ``whole_number`` or ``phone``."""
    format: str
    """How to write a value, in words."""
    required: bool
    """A row must give a value; what happens when it does not is ``if_missing``."""
    required_column: bool
    """The file is refused without this column."""
    allowed_values: list[str]
    max_length: int | None
    earliest: str | None
    if_missing: str
    if_unreadable: str
    returned_when: str
    """A readable value that still returns the referral (empty: none)."""
    meaning: str
    example: str


class DataDictionary(msgspec.Struct, frozen=True):
    """Every column an import file may have, and the rules about them as a whole."""

    kind: str
    columns: list[ColumnDefinition]
    notes: list[str]
