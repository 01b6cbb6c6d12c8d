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
- Corrections of delivery: a session moved to another day or cancelled, a place
  in a group ended (``reschedule_problem``, ``cancel_problem``,
  ``removal_problem``). Nothing is deleted: a cancelled session stays, its marks
  kept but counting for nothing, and every change keeps its reason. Whatever the
  register decides (started, completed, at risk) is worked out again from the
  marks that still count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from programme.platform.errors import FieldError
from referrals.rules import EARLIEST_RECORD, ENDED, OPEN, Status, allowed_next, too_early


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


REGISTER_SOURCE = "register"
"""The source of the lifecycle steps the register derives: the only ones it moves or undoes."""


@dataclass(frozen=True)
class MilestoneChange:
    """What a referral's marks change in its lifecycle, as ``milestone_change`` decides it."""

    status: Status
    status_on: date
    added: tuple[tuple[Status, date], ...] = ()
    """Steps to add, each dated."""
    removed: tuple[int, ...] = ()
    """Steps (their ids) to undo."""
    moved: tuple[tuple[int, date], ...] = ()
    """Steps (their ids) to re-date, each to its new day."""
    touched: tuple[date, ...] = ()
    """Days whose figures change: each step added or undone, a moved step's old and new day."""


def milestone_change(
    *,
    status: Status,
    status_on: date,
    marks: Sequence[Mapping[str, Any]],
    steps: Mapping[str, Mapping[str, Any]],
    rule: Mapping[str, Any],
    exit_review_on: date | None,
) -> MilestoneChange:
    """Bring a referral's started and completed milestones in line with its register.

    ``marks`` are the marks that count, in session order (``status``, ``held_on``,
    ``kind``); ``steps`` its lifecycle steps that count, by type (``id``,
    ``occurred_on``, ``source``). The first attended session starts an engaged
    referral; meeting ``completion_met_on`` completes a started one. Only steps the
    register derived itself (``REGISTER_SOURCE``) are re-dated or undone when the marks
    no longer bear them out: undoing the start takes the referral back to engaged (on
    the day it engaged), undoing the completion back to started.
    """
    added: list[tuple[Status, date]] = []
    removed: list[int] = []
    moved: list[tuple[int, date]] = []
    touched: list[date] = []
    present = [m for m in marks if m["status"] in PRESENT]
    new_status, new_on = status, status_on

    started = steps.get(Status.started.value)
    if present and Status.started in allowed_next(status):
        first = present[0]["held_on"]
        added.append((Status.started, first))
        touched.append(first)
        new_status, new_on = Status.started, first
    elif started and started["source"] == REGISTER_SOURCE and status == Status.started:
        if not present:
            removed.append(started["id"])
            touched.append(started["occurred_on"])
            engaged = steps[Status.engaged.value]
            new_status, new_on = Status.engaged, engaged["occurred_on"]
        elif present[0]["held_on"] != started["occurred_on"]:
            moved.append((started["id"], present[0]["held_on"]))
            touched += [started["occurred_on"], present[0]["held_on"]]
            new_on = present[0]["held_on"]

    if new_status in (Status.started, Status.completed):
        met_on = completion_met_on(present, rule, exit_review_on)
        completed = steps.get(Status.completed.value)
        if met_on is not None and Status.completed in allowed_next(new_status):
            added.append((Status.completed, met_on))
            touched.append(met_on)
            new_status, new_on = Status.completed, met_on
        elif completed and completed["source"] == REGISTER_SOURCE:
            if met_on is None:
                removed.append(completed["id"])
                touched.append(completed["occurred_on"])
                first = present[0]["held_on"] if present else status_on
                new_status, new_on = Status.started, first
            elif met_on != completed["occurred_on"]:
                moved.append((completed["id"], met_on))
                touched += [completed["occurred_on"], met_on]
                new_on = met_on

    return MilestoneChange(
        status=new_status,
        status_on=new_on,
        added=tuple(added),
        removed=tuple(removed),
        moved=tuple(moved),
        touched=tuple(touched),
    )


def at_risk_on(
    *,
    status: Status,
    limit: int,
    run: int | None,
    run_began: date | None,
    last_marked_on: date | None,
    alerted_on: date | None,
) -> date | None:
    """The day to raise an at-risk alert for partner support on, or None.

    Someone on the course (``ON_THE_COURSE``) whose latest marks are ``limit`` or more
    unexcused absences in a row (``run``, counted by ``queries.ABSENCE_RUNS``, which
    began on ``run_began``) is at risk, raised on the last marked session; once for
    each run: an alert raised on or after the run began (``alerted_on``, the latest)
    already covers it.
    """
    if status not in ON_THE_COURSE or run is None or run < limit:
        return None
    if alerted_on is not None and run_began is not None and alerted_on >= run_began:
        return None
    return last_marked_on


def reschedule_problem(
    *,
    new_on: date,
    group_starts_on: date,
    marked: bool,
    cancelled: bool,
    today: date,
) -> FieldError | None:
    """Why a session may not move to ``new_on``, or None.

    - A cancelled session is not moved: it did not happen; add a session instead.
    - Not before its group starts, nor before the tracker's records begin.
    - A session with marks on its register was held: it may be re-dated to the
      day it was really held, but never into the future (a register is kept only
      once a session is held). If it was not held after all, cancel it.
    Moving a marked session moves every milestone the register derived from it.
    """
    if cancelled:
        return FieldError(
            "cancelled", "", "A cancelled session is not moved; add a new session instead."
        )
    if new_on < group_starts_on:
        return FieldError("invalid", "held_on", "Before the group starts.")
    if new_on < EARLIEST_RECORD:
        return FieldError("too_early", "held_on", too_early(EARLIEST_RECORD))
    if marked and new_on > today:
        return FieldError(
            "marked_session_in_future",
            "held_on",
            "This session has marks, so it was held: it cannot move into the future. "
            "If it was not held, cancel it.",
        )
    return None


def cancel_problem(*, cancelled: bool) -> FieldError | None:
    """A session is cancelled once.

    A session with marks may be cancelled too (marked by mistake, it never took
    place): the marks are kept but count for nothing, and the started and
    completed milestones are worked out again without them.
    """
    if cancelled:
        return FieldError("already_cancelled", "", "This session is already cancelled.")
    return None


def removal_problem(*, on: date, joined_on: date, last_marked_on: date | None) -> FieldError | None:
    """Why a place in a group may not end on ``on``, or None.

    A place ends on or after the day it began, and not before a session of the
    group at which the person is marked: a mark says they still held the place.
    The person keeps their status; an engaged person without a place is back on
    the waiting list.
    """
    if on < joined_on:
        return FieldError(
            "before_joining", "on", f"Cannot be before the place began ({joined_on.isoformat()})."
        )
    if last_marked_on is not None and on < last_marked_on:
        return FieldError(
            "marked_after",
            "on",
            f"Marked on this group's register on {last_marked_on.isoformat()}: "
            "a place ends after its last marked session.",
        )
    return None


def working_days_between(start: date, end: date) -> int:
    """Working days (Monday to Friday) after ``start`` up to and including ``end``.

    How long a new referral has waited for first contact: a referral received on
    a Friday and not contacted by the next Monday has waited one working day.
    Bank holidays are not known here and count as working days (it errs towards
    highlighting a referral, never away from it). Zero when ``end`` is not after
    ``start``.
    """
    if end <= start:
        return 0
    whole_weeks, rest = divmod((end - start).days, 7)
    days = whole_weeks * 5
    for offset in range(1, rest + 1):
        if (start + timedelta(days=whole_weeks * 7 + offset)).weekday() < 5:
            days += 1
    return days


def overdue_for_contact(received_on: date, today: date, working_days: int) -> bool:
    """A new referral is overdue for first contact once it has waited more than
    ``working_days`` working days (the setting ``first_contact_working_days``)."""
    return working_days_between(received_on, today) > working_days
