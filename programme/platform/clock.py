"""Today's date where the programme runs, not where the server's clock is set."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

PROGRAMME_TIMEZONE = ZoneInfo("Europe/London")


def today() -> date:
    return datetime.now(PROGRAMME_TIMEZONE).date()
