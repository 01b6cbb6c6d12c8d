"""What a register decides for one referral, on its own: no database, no HTTP
(``milestone_change`` and ``at_risk_on``; test_register.py checks them through the
register, test_register_round_trips.py for twelve people at once)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta

from programme.delivery.rules import (
    REGISTER_SOURCE,
    CompletionRule,
    Mark,
    SessionKind,
    at_risk_on,
    milestone_change,
)
from referrals.rules import Status

ENGAGED_ON = date(2026, 6, 1)
FIRST = date(2026, 6, 2)
RULE = asdict(CompletionRule(weeks=4, completion_min_sessions=3, exit_review_required=False))


def marks(*pairs: tuple[date, Mark]) -> list[dict]:
    return [{"held_on": on, "status": mark, "kind": SessionKind.group} for on, mark in pairs]


def step(step_id: int, on: date, source: str = REGISTER_SOURCE) -> dict:
    return {"id": step_id, "occurred_on": on, "source": source}


ENGAGED = {Status.engaged.value: step(1, ENGAGED_ON, "manual")}


def test_the_first_attended_session_starts_an_engaged_referral_on_its_day():
    change = milestone_change(
        status=Status.engaged,
        status_on=ENGAGED_ON,
        marks=marks((FIRST, Mark.absent), (FIRST + timedelta(days=7), Mark.late)),
        steps=ENGAGED,
        rule=RULE,
        exit_review_on=None,
    )
    later = FIRST + timedelta(days=7)
    assert change.added == ((Status.started, later),)
    assert (change.status, change.status_on, change.touched) == (Status.started, later, (later,))


def test_nothing_changes_when_the_marks_still_bear_the_milestones_out():
    change = milestone_change(
        status=Status.started,
        status_on=FIRST,
        marks=marks((FIRST, Mark.attended)),
        steps={**ENGAGED, Status.started.value: step(2, FIRST)},
        rule=RULE,
        exit_review_on=None,
    )
    assert (change.added, change.removed, change.moved, change.touched) == ((), (), (), ())
    assert (change.status, change.status_on) == (Status.started, FIRST)


def test_a_start_with_no_attendance_left_is_undone_back_to_the_day_of_engagement():
    change = milestone_change(
        status=Status.started,
        status_on=FIRST,
        marks=marks((FIRST, Mark.excused)),
        steps={**ENGAGED, Status.started.value: step(2, FIRST)},
        rule=RULE,
        exit_review_on=None,
    )
    assert change.removed == (2,)
    assert (change.status, change.status_on, change.touched) == (
        Status.engaged,
        ENGAGED_ON,
        (FIRST,),
    )


def test_a_start_the_register_did_not_make_is_left_alone():
    change = milestone_change(
        status=Status.started,
        status_on=FIRST,
        marks=marks((FIRST, Mark.excused)),
        steps={**ENGAGED, Status.started.value: step(2, FIRST, "manual")},
        rule=RULE,
        exit_review_on=None,
    )
    assert (change.removed, change.moved, change.status) == ((), (), Status.started)


def test_a_start_moves_to_the_first_session_still_attended():
    later = FIRST + timedelta(days=7)
    change = milestone_change(
        status=Status.started,
        status_on=FIRST,
        marks=marks((FIRST, Mark.absent), (later, Mark.attended)),
        steps={**ENGAGED, Status.started.value: step(2, FIRST)},
        rule=RULE,
        exit_review_on=None,
    )
    assert change.moved == ((2, later),)
    assert (change.status_on, change.touched) == (later, (FIRST, later))


def test_completion_is_added_moved_and_undone_with_the_marks():
    days = [FIRST + timedelta(days=7 * n) for n in range(4)]
    three = marks(*((day, Mark.attended) for day in days[:3]))
    started = {**ENGAGED, Status.started.value: step(2, FIRST)}
    added = milestone_change(
        status=Status.started, status_on=FIRST, marks=three, steps=started, rule=RULE,
        exit_review_on=None,
    )  # fmt: skip
    assert added.added == ((Status.completed, days[2]),)
    assert (added.status, added.status_on) == (Status.completed, days[2])

    completed = {**started, Status.completed.value: step(3, days[2])}
    moved = milestone_change(
        status=Status.completed,
        status_on=days[2],
        marks=marks((days[0], Mark.attended), (days[1], Mark.absent), (days[2], Mark.attended),
                    (days[3], Mark.late)),
        steps=completed,
        rule=RULE,
        exit_review_on=None,
    )  # fmt: skip
    assert moved.moved == ((3, days[3]),)
    assert (moved.status, moved.status_on, moved.touched) == (
        Status.completed,
        days[3],
        (days[2], days[3]),
    )

    undone = milestone_change(
        status=Status.completed,
        status_on=days[2],
        marks=three[:2],
        steps=completed,
        rule=RULE,
        exit_review_on=None,
    )
    assert undone.removed == (3,)
    assert (undone.status, undone.status_on, undone.touched) == (
        Status.started,
        FIRST,
        (days[2],),
    )


def test_completion_waits_for_the_exit_review_when_the_rule_needs_one():
    days = [FIRST + timedelta(days=7 * n) for n in range(3)]
    rule = {**RULE, "exit_review_required": True}
    three = marks(*((day, Mark.attended) for day in days))
    started = {**ENGAGED, Status.started.value: step(2, FIRST)}
    waiting = milestone_change(
        status=Status.started, status_on=FIRST, marks=three, steps=started, rule=rule,
        exit_review_on=None,
    )  # fmt: skip
    assert (waiting.added, waiting.status) == ((), Status.started)
    review = days[2] + timedelta(days=3)
    met = milestone_change(
        status=Status.started, status_on=FIRST, marks=three, steps=started, rule=rule,
        exit_review_on=review,
    )  # fmt: skip
    assert met.added == ((Status.completed, review),)


def test_someone_at_risk_is_alerted_once_for_each_run_of_absences():
    run_began = date(2026, 7, 1)
    last = date(2026, 7, 15)
    at_risk = {"limit": 3, "run": 3, "run_began": run_began, "last_marked_on": last}
    assert at_risk_on(status=Status.started, alerted_on=None, **at_risk) == last
    assert at_risk_on(status=Status.engaged, alerted_on=date(2026, 6, 1), **at_risk) == last
    assert at_risk_on(status=Status.started, alerted_on=run_began, **at_risk) is None
    assert at_risk_on(status=Status.completed, alerted_on=None, **at_risk) is None
    short = {**at_risk, "run": 2}
    assert at_risk_on(status=Status.started, alerted_on=None, **short) is None
    unmarked = {**at_risk, "run": None, "run_began": None, "last_marked_on": None}
    assert at_risk_on(status=Status.started, alerted_on=None, **unmarked) is None
