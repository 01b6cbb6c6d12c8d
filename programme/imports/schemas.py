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
