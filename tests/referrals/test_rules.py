"""The referral rules on their own: no database, no HTTP (tests/referrals/test_intake.py
and test_lifecycle.py check the same rules through the API)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
from datetime import date
from uuid import UUID

import pytest

from referrals.rules import (
    ConsentMethod,
    Gender,
    Relationship,
    ReturnReason,
    RiskLevel,
    Status,
    Submission,
    VictimDetails,
    age_band,
    age_on,
    allowed_next,
    assess_quality,
    check,
    check_victim,
    check_victims,
    day_problem,
    dialable_uk_number,
    match_key,
    pseudonym,
)
from tests.builders import PHONE, PHONE_E164, VICTIM, good_referral

TODAY = date(2026, 10, 1)
AREAS = ("Barnsley", "Doncaster", "Rotherham", "Sheffield")


def run_check(raw, **kwargs):
    return check(raw, today=TODAY, commissioned_areas=AREAS, **kwargs)


def problems(errors) -> list[tuple[str, str]]:
    return [(error.code, error.field) for error in errors]


def submission(**overrides) -> Submission:
    checked = run_check(good_referral(**overrides))
    assert checked.submission is not None, checked.errors
    return checked.submission


# ----------------------------------------------------------------- lifecycle

S = Status
ALLOWED = {
    (S.accepted, S.contacted), (S.contacted, S.engaged), (S.engaged, S.started),
    (S.started, S.completed),
    *((status, end) for status in (S.accepted, S.contacted, S.engaged, S.started)
      for end in (S.disengaged, S.withdrawn, S.closed)),
}  # fmt: skip
"""Every move the lifecycle allows; any other pair is refused."""


@pytest.mark.parametrize(("before", "after"), list(itertools.product(Status, Status)))
def test_every_transition_is_allowed_or_refused(before, after):
    assert (after in allowed_next(before)) == ((before, after) in ALLOWED)


@pytest.mark.parametrize(
    ("status", "following"),
    [
        (S.accepted, [S.contacted, S.disengaged, S.withdrawn, S.closed]),
        (S.contacted, [S.engaged, S.disengaged, S.withdrawn, S.closed]),
        (S.engaged, [S.started, S.disengaged, S.withdrawn, S.closed]),
        (S.started, [S.completed, S.disengaged, S.withdrawn, S.closed]),
        (S.completed, []),
        (S.disengaged, []),
        (S.withdrawn, []),
        (S.closed, []),
    ],
)
def test_the_next_steps_come_in_lifecycle_order(status, following):
    assert allowed_next(status) == following


# ------------------------------------------------------------------- people


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("Seán", "O'Neil"),
        ("SEAN", "ONEIL"),
        ("sean", "o\u2019neil"),  # a typographic apostrophe
        ("  Sean ", " O Neil  "),
        ("Se\u0301an", "O'Neil"),  # the accent as a combining character
        ("Séan", "O-Neil"),
        ("Sean.", "O'Neil"),
    ],
)
def test_match_key_folds_case_accents_spaces_and_punctuation(first, last):
    assert match_key(first, last, date(1990, 5, 17)) == "oneil|sean|1990-05-17"


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("Zoë", "Brontë"),
        ("zoe", "bronte"),
        ("Zoe", "Bron Te"),
        ("ZOË", "BRONTË"),
    ],
)
def test_match_key_folds_diaereses_and_capitals(first, last):
    assert match_key(first, last, date(1980, 1, 2)) == match_key("Zoe", "Bronte", date(1980, 1, 2))


def test_match_key_tells_people_apart():
    born = date(1990, 5, 17)
    key = match_key("Mary Ann", "Smith-Jones", born)
    assert key == match_key("maryann", "smith jones", born)
    assert key != match_key("Mary Ann", "Smith-Jones", date(1990, 5, 18))
    assert key != match_key("Mary", "Smith-Jones", born)
    assert key != match_key("Mary Ann", "Smith", born)
    # First and last name are kept apart: swapping them is someone else.
    assert match_key("Jordan", "Taylor", born) != match_key("Taylor", "Jordan", born)


@pytest.mark.parametrize(
    ("number", "e164"),
    [
        (PHONE, PHONE_E164),  # Sheffield landline
        ("01144960123", PHONE_E164),
        ("(0114) 496 0123", PHONE_E164),
        ("+44 114 496 0123", PHONE_E164),
        ("+44 (0)114 496 0123", PHONE_E164),
        ("0044 114 496 0123", PHONE_E164),
        ("020 7946 0000", "+442079460000"),  # London landline
        ("0161 496 0000", "+441614960000"),  # Manchester landline
        ("07400 123456", "+447400123456"),  # mobile
        ("07911 123456", "+447911123456"),  # mobile
        ("+447911123456", "+447911123456"),
        ("056 1234 5678", "+445612345678"),  # VoIP: a person answers it
        ("070 1234 5678", "+447012345678"),  # personal number: a person answers it
    ],
)
def test_uk_landlines_and_mobiles_are_dialable(number, e164):
    assert dialable_uk_number(number) == e164


@pytest.mark.parametrize(
    "number",
    [
        "0800 123 4567",  # freephone
        "0808 157 0000",  # freephone
        "0909 879 0000",  # premium rate
        "0871 123 4567",  # revenue sharing
        "0845 123 4567",  # shared cost
        "0300 123 4567",  # non-geographic (UAN)
        "076 2345 6789",  # pager
        "+33 1 23 45 67 89",  # France
        "+1 212 555 0123",  # United States
        "+353 1 234 5678",  # Ireland
        "0114 496 012",  # a digit short
        "0114 496 01234",  # a digit long
        "999",
        "12345",
        "not a number",
        "",
    ],
)
def test_numbers_nobody_can_be_rung_on_are_refused(number):
    assert dialable_uk_number(number) is None


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2010, 10, 1), date(2026, 9, 30), 15),  # the day before the 16th birthday
        (date(2010, 10, 1), date(2026, 10, 1), 16),  # the 16th birthday
        (date(2010, 10, 1), date(2026, 10, 2), 16),
        (date(1990, 12, 31), date(2026, 1, 1), 35),  # the birthday is later in the year
        (date(1990, 1, 1), date(2026, 12, 31), 36),
        # Born on 29 February: the birthday is 29 February in a leap year ...
        (date(2008, 2, 29), date(2024, 2, 28), 15),
        (date(2008, 2, 29), date(2024, 2, 29), 16),
        # ... and 1 March in any other year (2100 is not a leap year).
        (date(2084, 2, 29), date(2100, 2, 28), 15),
        (date(2084, 2, 29), date(2100, 3, 1), 16),
        (date(1992, 2, 29), date(2009, 2, 28), 16),
        (date(1992, 2, 29), date(2009, 3, 1), 17),
        (date(2026, 10, 1), date(2026, 10, 1), 0),
    ],
)
def test_age_on_a_day(born, on, age):
    assert age_on(born, on) == age


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (0, "under 16"),
        (15, "under 16"),
        (16, "16-17"),
        (17, "16-17"),
        (18, "18-24"),
        (24, "18-24"),
        (25, "25-34"),
        (34, "25-34"),
        (35, "35-44"),
        (44, "35-44"),
        (45, "45-54"),
        (54, "45-54"),
        (55, "55-64"),
        (64, "55-64"),
        (65, "65+"),
        (101, "65+"),
    ],
)
def test_age_bands_meet_without_gaps(age, band):
    assert age_band(age) == band


PERSON = UUID("12345678-1234-5678-1234-567812345678")


def test_a_pseudonym_is_stable_keyed_and_gives_nothing_away():
    name = pseudonym(PERSON, "secret")
    assert re.fullmatch(r"P-[0-9A-F]{12}", name)
    assert pseudonym(PERSON, "secret") == name
    assert pseudonym(PERSON, "another secret") != name
    assert pseudonym(UUID(int=PERSON.int + 1), "secret") != name
    assert PERSON.hex[:12].upper() not in name
    # Published reports name people by it: the derivation must not drift.
    digest = hmac.new(b"secret", b"person:" + PERSON.bytes, hashlib.sha256).hexdigest()
    assert name == "P-" + digest[:12].upper()


# ------------------------------------------------------------------- intake


def test_a_good_referral_passes_with_its_values_typed():
    checked = run_check(good_referral(reference="SYP-0001"))
    assert (checked.errors, checked.reasons, checked.malformed) == ([], [], False)
    assert checked.received_on == date(2026, 10, 1)
    assert checked.submission == Submission(
        reference="SYP-0001",
        received_on=date(2026, 10, 1),
        first_name="Jordan",
        last_name="Testperson",
        date_of_birth=date(1990, 5, 17),
        gender=Gender.male,
        phone=PHONE_E164,
        local_authority="Rotherham",
        relationship=Relationship.partner,
        risk_level=RiskLevel.medium,
        prior_incidents=2,
        substance_misuse=False,
        mental_health=True,
        children_in_household=True,
        on_probation_programme=False,
        consent_obtained_on=date(2026, 9, 30),
        consent_method=ConsentMethod.verbal,
        notes="Agreed to a call on weekday mornings.",
        victims=(),
    )


def test_values_read_from_a_file_are_accepted_as_text():
    raw = {
        key: "yes" if value is True else "no" if value is False else str(value)
        for key, value in good_referral().items()
    }
    raw |= {
        "first_name": "  Jordan ",
        "gender": "MALE",
        "relationship": "Partner",
        "local_authority": "rotherham",
        "risk_level": "High",
        "consent_method": "Written",
        "prior_incidents": " 3 ",
        "mental_health": "Y",
        "substance_misuse": "0",
    }
    sub = run_check(raw).submission
    assert sub is not None
    assert (sub.first_name, sub.gender, sub.relationship, sub.local_authority) == (
        "Jordan", Gender.male, Relationship.partner, "Rotherham",
    )  # fmt: skip
    assert (sub.risk_level, sub.consent_method, sub.prior_incidents) == (
        RiskLevel.high, ConsentMethod.written, 3,
    )  # fmt: skip
    assert (sub.mental_health, sub.substance_misuse, sub.on_probation_programme) == (
        True, False, False,
    )  # fmt: skip


def test_optional_details_may_be_left_out():
    sub = submission(
        reference=..., risk_level=..., prior_incidents=..., substance_misuse=...,
        mental_health=None, children_in_household="", notes="  ",
    )  # fmt: skip
    assert (sub.reference, sub.risk_level, sub.prior_incidents, sub.notes) == (None,) * 4
    assert (sub.substance_misuse, sub.mental_health, sub.children_in_household) == (None,) * 3


def test_a_referral_without_a_received_date_is_received_today():
    assert submission(received_on=...).received_on == TODAY


def test_consent_on_the_day_of_the_referral_and_a_16th_birthday_that_day_are_accepted():
    sub = submission(
        received_on="2026-06-01", consent_obtained_on="2026-06-01", date_of_birth="2010-06-01"
    )
    assert (sub.received_on, sub.consent_obtained_on) == (date(2026, 6, 1), date(2026, 6, 1))


@pytest.mark.parametrize(
    ("overrides", "code", "field", "malformed", "reason"),
    [
        ({"consent_given": False}, "consent_missing", "consent_given", False, "consent_missing"),
        ({"consent_given": ...}, "required", "consent_given", False, "consent_missing"),
        ({"consent_given": "maybe"}, "invalid", "consent_given", True, "consent_missing"),
        ({"consent_obtained_on": ...}, "required", "consent_obtained_on", False, "consent_missing"),
        ({"consent_obtained_on": "2026-10-02"}, "future_date",
         "consent_obtained_on", False, "consent_missing"),
        ({"received_on": "2026-09-01", "consent_obtained_on": "2026-09-15"}, "consent_missing",
         "consent_obtained_on", False, "consent_missing"),
        ({"consent_obtained_on": "2099-01-01"}, "future_date",
         "consent_obtained_on", False, "consent_missing"),
        ({"consent_obtained_on": "30/09/2026"}, "invalid",
         "consent_obtained_on", True, "consent_missing"),
        ({"consent_method": ...}, "required", "consent_method", False, "consent_missing"),
        ({"consent_method": "telepathy"}, "invalid", "consent_method", True, "consent_missing"),
        ({"first_name": ""}, "required", "first_name", False, "incomplete"),
        ({"first_name": "   "}, "required", "first_name", False, "incomplete"),
        ({"first_name": "J" * 101}, "invalid", "first_name", True, "incomplete"),
        ({"first_name": 42}, "invalid", "first_name", True, "incomplete"),
        ({"last_name": ...}, "required", "last_name", False, "incomplete"),
        ({"date_of_birth": ...}, "required", "date_of_birth", False, "incomplete"),
        ({"date_of_birth": "17/05/1990"}, "invalid", "date_of_birth", True, "incomplete"),
        ({"date_of_birth": "2027-01-01"}, "future_date", "date_of_birth", True, "incomplete"),
        ({"gender": ...}, "required", "gender", False, "incomplete"),
        ({"gender": "lizard"}, "invalid", "gender", True, "incomplete"),
        ({"local_authority": ...}, "required", "local_authority", False, "incomplete"),
        ({"relationship": ...}, "required", "relationship", False, "incomplete"),
        ({"relationship": "neighbour"}, "invalid", "relationship", True, "incomplete"),
        ({"on_probation_programme": ...}, "required",
         "on_probation_programme", False, "incomplete"),
        ({"on_probation_programme": "perhaps"}, "invalid",
         "on_probation_programme", True, "incomplete"),
        ({"risk_level": "extreme"}, "invalid", "risk_level", True, "incomplete"),
        ({"prior_incidents": -1}, "invalid", "prior_incidents", True, "incomplete"),
        ({"prior_incidents": "two"}, "invalid", "prior_incidents", True, "incomplete"),
        ({"prior_incidents": True}, "invalid", "prior_incidents", True, "incomplete"),
        ({"substance_misuse": "sometimes"}, "invalid", "substance_misuse", True, "incomplete"),
        ({"mental_health": 1}, "invalid", "mental_health", True, "incomplete"),
        ({"received_on": "2099-01-01"}, "future_date", "received_on", True, "incomplete"),
        ({"received_on": "yesterday"}, "invalid", "received_on", True, "incomplete"),
        ({"reference": "AB"}, "invalid", "reference", True, "incomplete"),
        ({"reference": "has space"}, "invalid", "reference", True, "incomplete"),
        ({"reference": "R" * 41}, "invalid", "reference", True, "incomplete"),
        ({"notes": "n" * 4001}, "invalid", "notes", True, "incomplete"),
        ({"phone": ...}, "required", "phone", False, "no_contact_number"),
        ({"phone": "12345"}, "invalid", "phone", False, "no_contact_number"),
        ({"phone": "0800 123 4567"}, "invalid", "phone", False, "no_contact_number"),
        ({"phone": "0909 879 0000"}, "invalid", "phone", False, "no_contact_number"),
        ({"phone": "+1 202 555 0100"}, "invalid", "phone", False, "no_contact_number"),
        ({"phone": 1144960123}, "invalid", "phone", False, "no_contact_number"),
        ({"date_of_birth": "2010-10-02"}, "under_16", "date_of_birth", False, "under_16"),
        ({"date_of_birth": "2026-10-01"}, "under_16",
         "date_of_birth", False, "under_16"),  # born today
        ({"relationship": "other"}, "not_domestic_abuse",
         "relationship", False, "not_domestic_abuse"),
        ({"on_probation_programme": True}, "on_mandated_programme", "on_probation_programme",
         False, "on_mandated_programme"),
        ({"on_probation_programme": "yes"}, "on_mandated_programme", "on_probation_programme",
         False, "on_mandated_programme"),
        ({"local_authority": "Leeds"}, "out_of_area", "local_authority", False, "out_of_area"),
        ({"nickname": "JT"}, "unknown_field", "nickname", True, None),
    ],
)  # fmt: skip
def test_each_check_fails_on_exactly_its_field(overrides, code, field, malformed, reason):
    """The code says what is wrong with the field; the reason, why the referral is returned."""
    checked = run_check(good_referral(**overrides))
    assert checked.submission is None
    assert problems(checked.errors) == [(code, field)]
    assert checked.malformed is malformed
    assert checked.reasons == ([ReturnReason(reason)] if reason else [])


def test_every_reason_has_a_check_that_gives_it():
    covered = {
        "consent_missing", "incomplete", "no_contact_number", "under_16",
        "not_domestic_abuse", "on_mandated_programme", "out_of_area",
    }  # fmt: skip
    assert {reason.value for reason in ReturnReason} == covered


def test_every_failure_is_reported_and_each_reason_once():
    checked = run_check(
        good_referral(
            local_authority="Leeds", relationship="other", consent_given=False, consent_method=...
        )
    )
    assert problems(checked.errors) == [
        ("out_of_area", "local_authority"),
        ("not_domestic_abuse", "relationship"),
        ("consent_missing", "consent_given"),
        ("required", "consent_method"),
    ]
    assert checked.reasons == [
        ReturnReason.out_of_area, ReturnReason.not_domestic_abuse, ReturnReason.consent_missing,
    ]  # fmt: skip
    assert checked.malformed is False
    assert checked.received_on == date(2026, 10, 1)


def test_a_refused_referral_still_says_when_it_was_received():
    checked = run_check(good_referral(received_on="2026-07-15", consent_given=False))
    assert checked.received_on == date(2026, 7, 15)
    assert run_check(good_referral(received_on="15/07/2026")).received_on is None


@pytest.mark.parametrize(
    ("received_on", "date_of_birth", "returned"),
    [
        ("2026-10-01", "2010-10-01", False),  # 16 that day
        ("2026-09-30", "2010-10-01", True),  # 16 the day after
        ("2024-02-29", "2008-02-29", False),  # a leap-day birth's 16th birthday
        ("2024-02-28", "2008-02-29", True),
    ],
)
def test_the_minimum_age_is_16_on_the_day_of_referral(received_on, date_of_birth, returned):
    checked = run_check(
        good_referral(
            received_on=received_on, consent_obtained_on=received_on, date_of_birth=date_of_birth
        )
    )
    assert checked.reasons == ([ReturnReason.under_16] if returned else [])


def test_the_importers_own_columns_are_allowed_only_when_named():
    raw = good_referral(agency="South Yorkshire Police")
    assert run_check(raw, extra_fields=frozenset({"agency"})).submission is not None
    assert problems(run_check(raw).errors) == [("unknown_field", "agency")]


def test_a_problem_with_a_victim_is_an_error_but_not_a_reason_to_return():
    checked = run_check(good_referral(victims=[{**VICTIM, "phone": "0800 123 4567"}]))
    assert checked.submission is None
    assert problems(checked.errors) == [("invalid", "victims[0].phone")]
    assert checked.reasons == []


def test_named_victims_are_kept_with_the_submission():
    sub = submission(victims=[VICTIM])
    assert sub.victims == (
        VictimDetails(
            first_name="Verity",
            last_name="Survivorson",
            phone="+441144960888",
            relationship="partner",
            consent_to_contact=True,
            consent_obtained_on=date(2026, 9, 29),
        ),
    )


# ------------------------------------------------------------------ quality


def test_a_referral_with_every_useful_detail_scores_100():
    quality = assess_quality(submission(victims=[VICTIM]))
    assert (quality.score, quality.missing) == (100, [])


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"risk_level": ...}, "risk_level"),
        ({"prior_incidents": ...}, "prior_incidents"),
        ({"substance_misuse": ...}, "complex_needs"),
        ({"mental_health": ...}, "complex_needs"),
        ({"children_in_household": ...}, "complex_needs"),
        ({"notes": ...}, "notes"),
        ({"victims": []}, "victims"),
        ({"victims": [{**VICTIM, "consent_to_contact": False}]}, "victims"),
    ],
)
def test_each_missing_useful_detail_is_named_with_why(overrides, missing):
    quality = assess_quality(submission(**{"victims": [VICTIM], **overrides}))
    assert [detail.field for detail in quality.missing] == [missing]
    assert quality.missing[0].why
    assert quality.score == 80


def test_complex_needs_answered_no_count_as_given():
    sub = submission(
        victims=[VICTIM], substance_misuse=False, mental_health=False, children_in_household=False
    )
    assert assess_quality(sub).score == 100


def test_a_bare_referral_scores_0_and_lists_what_is_missing_in_order():
    sub = submission(risk_level=..., prior_incidents=..., mental_health=..., notes=...)
    quality = assess_quality(sub)
    assert [detail.field for detail in quality.missing] == [
        "risk_level", "prior_incidents", "complex_needs", "victims", "notes",
    ]  # fmt: skip
    assert quality.score == 0
    assert assess_quality(submission(risk_level=..., notes=...)).score == 40


# ------------------------------------------------------------------ victims


def test_a_victim_is_checked_into_typed_details():
    victim, errors = check_victim(VICTIM, "victims[0]", today=TODAY)
    assert errors == []
    assert victim == VictimDetails(
        first_name="Verity",
        last_name="Survivorson",
        phone="+441144960888",
        relationship="partner",
        consent_to_contact=True,
        consent_obtained_on=date(2026, 9, 29),
    )


def test_a_victim_may_have_consented_today():
    victim, errors = check_victim({**VICTIM, "consent_obtained_on": "2026-10-01"}, "v", today=TODAY)
    assert errors == []
    assert victim is not None and victim.consent_obtained_on == TODAY


def test_a_victim_needs_only_a_first_name_a_relationship_and_an_answer_on_consent():
    raw = {"first_name": " Verity ", "relationship": "ex_partner", "consent_to_contact": False}
    victim, errors = check_victim(raw, "v", today=TODAY)
    assert errors == []
    assert victim == VictimDetails("Verity", None, None, "ex_partner", False, None)


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"first_name": None}, "required", "first_name"),
        ({"first_name": "  "}, "required", "first_name"),
        ({"last_name": "S" * 101}, "invalid", "last_name"),
        ({"last_name": 7}, "invalid", "last_name"),
        ({"phone": "0800 123 4567"}, "invalid", "phone"),
        ({"phone": "+33 1 23 45 67 89"}, "invalid", "phone"),
        ({"relationship": None}, "required", "relationship"),
        ({"relationship": "neighbour"}, "invalid", "relationship"),
        ({"consent_to_contact": None}, "required", "consent_to_contact"),
        ({"consent_to_contact": "yes"}, "invalid", "consent_to_contact"),
        ({"consent_obtained_on": "29/09/2026"}, "invalid", "consent_obtained_on"),
        ({"consent_obtained_on": "2026-10-02"}, "future_date", "consent_obtained_on"),
        ({"consent_obtained_on": "2014-12-31"}, "too_early", "consent_obtained_on"),
        # consent, but since when?
        ({"consent_obtained_on": None}, "required", "consent_obtained_on"),
    ],
)
def test_each_victim_check_fails_on_exactly_its_field(change, code, field):
    raw = {key: value for key, value in {**VICTIM, **change}.items() if value is not None}
    victim, errors = check_victim(raw, "victims[2]", today=TODAY)
    assert victim is None
    assert problems(errors) == [(code, f"victims[2].{field}")]


def test_a_victim_with_an_unknown_field_or_not_an_object_is_refused():
    victim, errors = check_victim({**VICTIM, "address": "1 High St"}, "v", today=TODAY)
    assert (victim, problems(errors)) == (None, [("unknown_field", "v.address")])
    victim, errors = check_victim(["Verity"], "victims[0]", today=TODAY)
    assert (victim, problems(errors)) == (None, [("invalid", "victims[0]")])


def test_every_victim_problem_is_reported():
    victim, errors = check_victim({"phone": "1"}, "v", today=TODAY)
    assert victim is None
    assert problems(errors) == [
        ("required", "v.first_name"),
        ("invalid", "v.phone"),
        ("required", "v.relationship"),
        ("required", "v.consent_to_contact"),
    ]


def test_victims_are_checked_in_a_list_of_up_to_ten():
    assert check_victims(None, today=TODAY) == ([], [])
    victims, errors = check_victims([VICTIM] * 10, today=TODAY)
    assert (len(victims), errors) == (10, [])
    for too_many_or_not_a_list in ([VICTIM] * 11, VICTIM, "Verity"):
        victims, errors = check_victims(too_many_or_not_a_list, today=TODAY)
        assert (victims, problems(errors)) == ([], [("invalid", "victims")])


def test_each_victims_problems_are_reported_by_position():
    bad = {**VICTIM, "relationship": "neighbour"}
    victims, errors = check_victims([VICTIM, bad, {**VICTIM, "phone": "1"}], today=TODAY)
    assert [v.first_name for v in victims] == ["Verity"]
    assert problems(errors) == [("invalid", "victims[1].relationship"),
                                ("invalid", "victims[2].phone")]  # fmt: skip


def test_a_victims_relationship_is_read_as_the_referrals_is():
    details, problems = check_victim(
        {"first_name": "Sam", "relationship": " Partner ", "consent_to_contact": False},
        "victims[0]",
        today=date(2026, 11, 27),
    )
    assert problems == []
    assert details is not None and details.relationship == "partner"


def test_a_victims_first_name_of_the_wrong_kind_is_one_problem_not_two():
    _, problems = check_victim(
        {"first_name": 42, "relationship": "partner", "consent_to_contact": False},
        "victims[0]",
        today=date(2026, 11, 27),
    )
    assert [(p.field, p.message) for p in problems] == [
        ("victims[0].first_name", "Expected text of up to 100 characters.")
    ]


@pytest.mark.parametrize(
    ("on", "code"),
    [
        (date(2026, 11, 28), "future_date"),
        (date(2014, 12, 31), "too_early"),
        (date(1, 1, 1), "too_early"),
    ],
)
def test_a_recorded_day_has_happened_and_is_not_before_records_began(on, code):
    problem = day_problem("on", on, date(2026, 11, 27))
    assert problem is not None and (problem.code, problem.field) == (code, "on")


@pytest.mark.parametrize("on", [date(2015, 1, 1), date(2026, 11, 27)])
def test_the_first_and_last_possible_days_are_fine(on):
    assert day_problem("on", on, date(2026, 11, 27)) is None
