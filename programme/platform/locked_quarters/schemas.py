"""Bodies of the locked-quarters routes."""

from __future__ import annotations

from datetime import datetime

import msgspec


class LockedQuarterOut(msgspec.Struct):
    quarter: str
    """Its label, e.g. 'Q3 2021-22'."""
    locked_at: datetime
    locked_by: str
    """The admin who marked it reported."""
    revisions: int
    """Writes an admin has let into it since, each audited with its reason."""
    revised_at: datetime | None
    status: str
    """'reported', or 'revised since reported' once a write has landed in it."""
