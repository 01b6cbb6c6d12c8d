"""The rules of running the programme: pure decisions, no database, no HTTP.

- The completion rule the programme is commissioned with (a commissioner may
  change the numbers; these are the defaults a new programme starts with).
- The register decides the ``started`` and ``completed`` milestones: the first
  ``attended`` or ``late`` mark starts the referral, dated on that session;
  attending ``completion_min_sessions`` core group sessions within ``weeks``
  of the start, with an exit review when required, completes it, dated when
  the last of those conditions was met.
- Consecutive unexcused absences are counted in SQL (``queries.ABSENCE_RUNS``),
  where both the register and the at-risk list read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from referrals.rules import ENDED, OPEN, Status


class SessionKind(StrEnum):
    group = "group"
    one_to_one = "one_to_one"


class Mark(StrEnum):
    attended = "attended"
    late = "late"
    absent = "absent"
    excused = "excused"


PRESENT = frozenset({Mark.attended, Mark.late})
"""Marks that count as attending a session."""

ON_THE_COURSE = frozenset({Status.engaged, Status.started})
"""Referrals the at-risk list follows: people with a place who have not ended.

A referral that has ended (completed, disengaged, withdrawn, closed: the
lifecycle's ``ENDED``) drops off the list whatever its register says, since
nobody is left to chase.
"""
assert ON_THE_COURSE <= OPEN and not ON_THE_COURSE & ENDED

ONE_SESSION_A_DAY = "programme_session_one_a_day"
"""A group holds at most one session of each kind on a day (a unique index of that name).

The completion rule counts sessions attended; nineteen group sessions dated on
one day would let one afternoon complete someone, which no real course does.
A group session and a one-to-one may share a day.
"""

JOINABLE = (Status.engaged.value, Status.started.value)
"""Engaged people join a group; started ones only move between groups."""


@dataclass(frozen=True)
class CompletionRule:
    weeks: int = 26
    """Length of the programme from the first session."""
    core_sessions: int = 24
    """Core group sessions in the course."""
    completion_min_sessions: int = 18
    """Core sessions to attend (within the length) to complete."""
    exit_review_required: bool = True
    """Completion needs an exit review."""
    at_risk_absences: int = 3
    """Consecutive unexcused absences that put someone at risk."""


DEFAULT_RULE = CompletionRule()
"""Inspire to Change as commissioned: 24 weekly core sessions over six months, 18 to complete."""


def started_on(present: Sequence[Mapping[str, Any]]) -> date | None:
    """The day of the first session attended, marks in session order."""
    return present[0]["held_on"] if present else None


def completion_met_on(
    present: Sequence[Mapping[str, Any]], rule: Mapping[str, Any], exit_review_on: date | None
) -> date | None:
    """When the completion rule was met by these attended sessions, or None if it is not.

    ``present`` are the attended marks in session order, each with ``held_on`` and
    ``kind``; one-to-ones start a referral but do not count towards completion.
    """
    start = started_on(present)
    if start is None:
        return None
    window_end = start + timedelta(weeks=rule["weeks"])
    core = [m for m in present if m["kind"] == SessionKind.group and m["held_on"] <= window_end]
    needed = rule["completion_min_sessions"]
    if len(core) < needed:
        return None
    met_on: date = core[needed - 1]["held_on"]
    if rule["exit_review_required"]:
        if exit_review_on is None:
            return None
        met_on = max(met_on, exit_review_on)
    return met_on
