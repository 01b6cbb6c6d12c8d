"""Reported quarters hold still: pure decisions about locked quarters.

Once contract monitors have been sent a quarter's figures, the quarter is
locked (``PUT /reports/locked-quarters/{quarter}``). A later write dated in it
(a referral received, a return, a lifecycle step, a register mark, victim
feedback) would change figures already published without anyone saying so,
so it is refused (409 ``quarter_locked``). An admin who must correct a locked
quarter says why (``override_reason``): the write goes ahead, the reason is
kept in the audit trail, and the quarterly report marks the quarter
``revised since reported`` from then on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from programme.platform.quarters import Quarter
from programme.platform.tables import Role

MAX_REASON = 500
"""An override's reason: a sentence or two, not a case note."""

REPORTED = "reported"
REVISED = "revised since reported"


def quarters_of(days: Iterable[date | None]) -> list[Quarter]:
    """The distinct quarters some days fall in, in order; days not given are ignored."""
    return sorted({Quarter.of(day) for day in days if day is not None})


def may_lock(quarter: Quarter, today: date) -> bool:
    """Only a quarter that has ended can have been reported."""
    return quarter.last_day < today


COMMAND_LINE = "system"
"""The role the audit trail gives the command line, run by whoever runs the service."""


def override_allowed(role: str, reason: str | None) -> bool:
    """Only an admin (or the command line), and only with a reason, may change a reported
    quarter's figures."""
    return role in (Role.admin.value, COMMAND_LINE) and bool(reason and reason.strip())


def report_mark(locked: bool, revised: bool) -> str:
    """What the quarterly report says of a quarter: nothing, reported, or revised since."""
    if not locked:
        return ""
    return REVISED if revised else REPORTED
