"""The correction and voiding rules on their own: no database."""

from __future__ import annotations

from datetime import date

from referrals.rules import (
    Status,
    Step,
    affected_days,
    check_correction,
    identity_changed,
    received_on_problem,
    standing,
    void_problem,
)

AREAS = ("Rotherham", "Sheffield")
TODAY = date(2026, 11, 27)
STORED = {
    "received_on": date(2026, 10, 1),
    "first_name": "Jordan",
    "last_name": "Testperson",
    "date_of_birth": date(1990, 5, 17),
    "gender": "male",
    "phone": "+441144960123",
    "local_authority": "Rotherham",
    "relationship": "partner",
    "risk_level": "medium",
    "prior_incidents": 2,
    "substance_misuse": False,
    "mental_health": True,
    "children_in_household": None,
    "consent_obtained_on": date(2026, 9, 30),
    "consent_method": "verbal",
    "notes": None,
}


def correct(**raw):
    return check_correction(STORED, raw, today=TODAY, commissioned_areas=AREAS)


def test_only_the_changed_fields_are_reported_in_their_stored_form():
    checked = correct(last_name=" Testpersonne ", phone="0114 496 0456", reason="Typo")
    assert checked.errors == []
    assert checked.changed == {
        "last_name": ("Testperson", "Testpersonne"),
        "phone": ("+441144960123", "+441144960456"),
    }


def test_the_stored_record_as_it_is_passes_and_changes_nothing():
    checked = correct(risk_level="MEDIUM", reason="Same")
    assert checked.errors == [] and checked.changed == {}


def test_a_stored_record_that_fails_a_rule_today_is_reported():
    checked = check_correction(
        STORED, {"notes": "x", "reason": "r"}, today=TODAY, commissioned_areas=("Sheffield",)
    )
    assert [e.code for e in checked.errors] == ["out_of_area"]


def test_consent_after_a_corrected_received_date_is_refused():
    checked = correct(received_on="2026-09-29", reason="Typed the wrong day")
    assert [(e.code, e.field) for e in checked.errors] == [
        ("consent_missing", "consent_obtained_on")
    ]


def test_a_blank_or_overlong_reason_is_refused():
    assert [e.code for e in correct(notes="x", reason="  ").errors] == ["required"]
    assert [e.code for e in correct(notes="x", reason="r" * 2001).errors] == ["invalid"]
    assert [e.field for e in correct(notes="x", reason="r", override_reason=5).errors] == [
        "override_reason"
    ]


def test_identity_is_name_date_of_birth_and_phone():
    assert identity_changed({"date_of_birth": 1})
    assert identity_changed({"phone": 1})
    assert not identity_changed({"risk_level": 1, "notes": 1})


def test_a_received_date_stays_on_or_before_the_next_step():
    assert received_on_problem(date(2026, 10, 2), date(2026, 10, 2)) is None
    assert received_on_problem(date(2026, 10, 3), None) is None
    problem = received_on_problem(date(2026, 10, 3), date(2026, 10, 2))
    assert problem is not None and problem.code == "after_later_milestone"


def steps(*dated, voided=()):
    return [
        Step(id=n, type=Status(t), on=date.fromisoformat(on), source="manual", voided=n in voided)
        for n, (t, on) in enumerate(dated, start=1)
    ]


def test_the_standing_step_is_the_latest_counting_one_in_lifecycle_order_on_a_day():
    timeline = steps(("accepted", "2026-10-01"), ("engaged", "2026-10-02"),
                     ("contacted", "2026-10-02"))  # fmt: skip
    assert standing(timeline).type == Status.engaged
    assert standing(steps(("accepted", "2026-10-01"), ("contacted", "2026-10-02"),
                          voided={2})).type == Status.accepted  # fmt: skip


def test_what_may_be_voided():
    timeline = steps(
        ("accepted", "2026-10-01"), ("contacted", "2026-10-02"),
        ("engaged", "2026-10-03"), ("disengaged", "2026-10-04"), voided={4},
    )  # fmt: skip
    codes = {s.id: (p.code if (p := void_problem(timeline, s)) else None) for s in timeline}
    assert codes == {1: "cannot_void_acceptance", 2: "not_latest", 3: None, 4: "already_voided"}
    derived = [*timeline[:3], Step(id=9, type=Status.started, on=date(2026, 10, 5),
                                   source="register")]  # fmt: skip
    assert void_problem(derived, derived[-1]).code == "derived_from_register"


def test_affected_days_are_distinct_and_sorted():
    assert affected_days(date(2026, 10, 2), None, date(2026, 10, 1), date(2026, 10, 2)) == [
        date(2026, 10, 1), date(2026, 10, 2),
    ]  # fmt: skip
