"""The started and completed milestones on their own: no database, no HTTP
(tests/programme/delivery/test_register.py checks them through the register)."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date, timedelta

import pytest

from programme.delivery.rules import (
    DEFAULT_RULE,
    JOINABLE,
    PRESENT,
    CompletionRule,
    Mark,
    SessionKind,
    completion_met_on,
    started_on,
)

START = date(2026, 6, 2)
DEFAULT = asdict(DEFAULT_RULE)
SHORT = asdict(CompletionRule(weeks=4, completion_min_sessions=3))
"""Three core sessions within four weeks, as the register's HTTP tests use."""


def attended(*days: date, kind: str = SessionKind.group) -> list[dict]:
    return [{"held_on": day, "kind": kind} for day in days]


def weekly(count: int, first: date = START) -> list[dict]:
    """Group sessions attended once a week from ``first``."""
    return attended(*(first + timedelta(weeks=n) for n in range(count)))


def sorted_by_day(marks: list[dict]) -> list[dict]:
    """Marks in session order, when sessions are numbered by date."""
    return sorted(marks, key=lambda mark: mark["held_on"])


def test_the_commissioned_rule():
    assert (DEFAULT_RULE.weeks, DEFAULT_RULE.core_sessions) == (26, 24)
    assert DEFAULT_RULE.completion_min_sessions == 18
    assert DEFAULT_RULE.exit_review_required is True
    assert DEFAULT_RULE.at_risk_absences == 3


def test_attended_and_late_count_as_present_absent_and_excused_do_not():
    assert {Mark.attended, Mark.late} == PRESENT
    assert Mark.absent not in PRESENT and Mark.excused not in PRESENT
    assert JOINABLE == ("engaged", "started")


def test_nobody_has_started_before_attending():
    assert started_on([]) is None
    assert completion_met_on([], DEFAULT, exit_review_on=START) is None


def test_the_first_session_attended_starts_the_referral_one_to_ones_too():
    one_to_one = attended(date(2026, 6, 1), kind=SessionKind.one_to_one)
    assert started_on(one_to_one + weekly(2)) == date(2026, 6, 1)
    assert started_on(weekly(3)) == START


def test_exactly_the_sessions_needed_within_the_weeks_complete_on_the_last_of_them():
    sessions = weekly(18)
    review = START + timedelta(days=1)
    assert completion_met_on(sessions, DEFAULT, exit_review_on=review) == sessions[-1]["held_on"]
    assert completion_met_on(sessions[:-1], DEFAULT, exit_review_on=review) is None


def test_completion_is_dated_on_the_session_that_met_the_rule_not_the_last_attended():
    sessions = weekly(24)
    met = completion_met_on(sessions, DEFAULT, exit_review_on=START)
    assert met == sessions[17]["held_on"] == START + timedelta(weeks=17)


def test_one_session_outside_the_weeks_does_not_count():
    inside = weekly(2)
    last_day = START + timedelta(weeks=4)
    review = START
    assert completion_met_on(inside + attended(last_day), SHORT, review) == last_day
    late = last_day + timedelta(days=1)
    assert completion_met_on(inside + attended(late), SHORT, review) is None
    # Seventeen weekly sessions and the eighteenth in week 27 do not complete either.
    sessions = weekly(17) + attended(START + timedelta(weeks=26, days=1))
    assert completion_met_on(sessions, DEFAULT, exit_review_on=review) is None


def test_the_weeks_run_from_the_first_session_attended_even_a_one_to_one():
    one_to_one = attended(START - timedelta(days=10), kind=SessionKind.one_to_one)
    sessions = attended(START, START + timedelta(weeks=1), START + timedelta(weeks=4))
    # 4 weeks from the group start would include the third session; from the one-to-one,
    # it falls 10 days too late.
    assert completion_met_on(sessions, SHORT, exit_review_on=START) is not None
    assert completion_met_on(one_to_one + sessions, SHORT, exit_review_on=START) is None


def test_one_to_ones_do_not_count_towards_completion():
    one_to_ones = attended(
        *(START + timedelta(days=n) for n in (1, 2, 3, 4)), kind=SessionKind.one_to_one
    )
    review = START
    assert completion_met_on(weekly(2) + one_to_ones, SHORT, review) is None
    assert completion_met_on(sorted_by_day(weekly(3) + one_to_ones), SHORT, review) == (
        START + timedelta(weeks=2)
    )


def test_kinds_read_from_the_database_as_text_count_the_same():
    sessions = [{"held_on": m["held_on"], "kind": "group"} for m in weekly(3)]
    assert completion_met_on(sessions, SHORT, exit_review_on=START) == START + timedelta(weeks=2)
    one_to_ones = [{"held_on": m["held_on"], "kind": "one_to_one"} for m in weekly(3)]
    assert completion_met_on(one_to_ones, SHORT, exit_review_on=START) is None


def test_without_the_exit_review_there_is_no_completion():
    assert completion_met_on(weekly(24), DEFAULT, exit_review_on=None) is None


def test_an_exit_review_after_the_last_session_dates_the_completion():
    sessions = weekly(3)
    review = sessions[-1]["held_on"] + timedelta(days=9)
    assert completion_met_on(sessions, SHORT, exit_review_on=review) == review


def test_an_exit_review_before_the_last_session_leaves_the_session_date():
    sessions = weekly(3)
    assert completion_met_on(sessions, SHORT, exit_review_on=START) == sessions[-1]["held_on"]
    on_the_day = sessions[-1]["held_on"]
    assert completion_met_on(sessions, SHORT, exit_review_on=on_the_day) == on_the_day


def test_a_rule_without_an_exit_review_completes_on_the_session():
    rule = asdict(replace(DEFAULT_RULE, exit_review_required=False))
    sessions = weekly(18)
    assert completion_met_on(sessions, rule, exit_review_on=None) == sessions[-1]["held_on"]
    review = sessions[-1]["held_on"] + timedelta(days=30)
    assert completion_met_on(sessions, rule, exit_review_on=review) == sessions[-1]["held_on"]


@pytest.mark.parametrize(("needed", "completes"), [(1, True), (3, True), (4, False)])
def test_the_number_of_sessions_needed_comes_from_the_rule(needed, completes):
    rule = {**SHORT, "completion_min_sessions": needed}
    sessions = weekly(3)
    met = completion_met_on(sessions, rule, exit_review_on=START)
    assert met == (sessions[needed - 1]["held_on"] if completes else None)
