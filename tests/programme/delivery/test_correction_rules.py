"""The rules for moving and cancelling sessions and ending places: no database."""

from __future__ import annotations

from datetime import date

from programme.delivery.rules import cancel_problem, removal_problem, reschedule_problem

TODAY = date(2026, 11, 27)
STARTS = date(2026, 6, 1)


def code(problem):
    return None if problem is None else problem.code


def move(new_on, marked=False, cancelled=False):
    return code(
        reschedule_problem(
            new_on=new_on, group_starts_on=STARTS, marked=marked, cancelled=cancelled, today=TODAY
        )
    )


def test_a_planned_session_moves_anywhere_from_the_group_start():
    assert move(date(2027, 3, 1)) is None
    assert move(STARTS) is None
    assert move(date(2026, 5, 31)) == "invalid"


def test_a_marked_session_moves_only_to_a_day_already_past_or_today():
    assert move(TODAY, marked=True) is None
    assert move(date(2026, 11, 28), marked=True) == "marked_session_in_future"


def test_a_cancelled_session_does_not_move():
    assert move(date(2026, 12, 1), cancelled=True) == "cancelled"


def test_a_session_is_cancelled_once():
    assert cancel_problem(cancelled=False) is None
    assert code(cancel_problem(cancelled=True)) == "already_cancelled"


def test_a_place_ends_after_it_began_and_after_its_last_mark():
    joined = date(2026, 10, 2)
    assert removal_problem(on=joined, joined_on=joined, last_marked_on=None) is None
    assert code(removal_problem(on=date(2026, 10, 1), joined_on=joined, last_marked_on=None)) == (
        "before_joining"
    )
    marked = date(2026, 10, 13)
    assert removal_problem(on=marked, joined_on=joined, last_marked_on=marked) is None
    assert code(
        removal_problem(on=date(2026, 10, 12), joined_on=joined, last_marked_on=marked)
    ) == ("marked_after")
