"""Submitting referrals: every check, nothing kept from a refusal, repeat referrals."""

from __future__ import annotations

import asyncpg
import pytest

from programme.platform import database
from programme.platform.tables import Role
from referrals.tables import Person, Referral, ReturnedReferral
from tests.builders import PHONE_E164, good_referral

pytestmark = pytest.mark.anyio


@pytest.fixture
async def referrer(sign_in):
    return await sign_in(Role.referrer, "rita", agency="South Yorkshire Police")


@pytest.mark.smoke
async def test_a_good_referral_is_accepted_with_its_quality_assessment(client, referrer):
    response = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "accepted"
    assert body["reference"].startswith("ITC-2026-")
    assert body["received_on"] == "2026-10-01"
    assert body["previous_referrals"] == 0
    # Everything useful given except victim details (recorded by partner support).
    assert body["quality"] == {
        "score": 80,
        "missing": [{"field": "victims", "why": body["quality"]["missing"][0]["why"]}],
    }
    stored = await Referral.select(Referral.person.phone.as_alias("phone")).first()
    assert stored["phone"] == PHONE_E164


async def test_quality_lists_each_missing_useful_detail(client, referrer):
    body = good_referral(risk_level=..., prior_incidents=..., substance_misuse=..., notes=...)
    response = await client.post("/referrals", json=body, headers=referrer)
    assert response.status_code == 201, response.text
    quality = response.json()["quality"]
    assert [m["field"] for m in quality["missing"]] == [
        "risk_level", "prior_incidents", "complex_needs", "victims", "notes",
    ]  # fmt: skip
    assert quality["score"] == 0


@pytest.mark.parametrize(
    ("overrides", "code", "field", "reason"),
    [
        ({"consent_given": False}, "consent_missing", "consent_given", "consent_missing"),
        ({"consent_given": ...}, "required", "consent_given", "consent_missing"),
        ({"consent_obtained_on": "2026-10-02"}, "consent_missing", "consent_obtained_on",
         "consent_missing"),
        ({"consent_obtained_on": "2099-01-01"}, "future_date", "consent_obtained_on",
         "consent_missing"),
        ({"consent_method": ...}, "required", "consent_method", "consent_missing"),
        ({"consent_method": "telepathy"}, "invalid", "consent_method", "consent_missing"),
        ({"first_name": ""}, "required", "first_name", "incomplete"),
        ({"last_name": ...}, "required", "last_name", "incomplete"),
        ({"date_of_birth": "17/05/1990"}, "invalid", "date_of_birth", "incomplete"),
        ({"gender": "lizard"}, "invalid", "gender", "incomplete"),
        ({"on_probation_programme": ...}, "required", "on_probation_programme", "incomplete"),
        ({"prior_incidents": -1}, "invalid", "prior_incidents", "incomplete"),
        ({"received_on": "2099-01-01"}, "future_date", "received_on", "incomplete"),
        ({"phone": ...}, "required", "phone", "no_contact_number"),
        ({"phone": "12345"}, "invalid", "phone", "no_contact_number"),
        ({"phone": "0800 123 4567"}, "invalid", "phone", "no_contact_number"),
        ({"phone": "+1 202 555 0100"}, "invalid", "phone", "no_contact_number"),
        ({"date_of_birth": "2010-10-02"}, "under_16", "date_of_birth", "under_16"),
        ({"relationship": "other"}, "not_domestic_abuse", "relationship", "not_domestic_abuse"),
        ({"on_probation_programme": True}, "on_mandated_programme", "on_probation_programme",
         "on_mandated_programme"),
        ({"local_authority": "Leeds"}, "out_of_area", "local_authority", "out_of_area"),
        ({"nickname": "JT"}, "unknown_field", "nickname", None),
    ],
)  # fmt: skip
async def test_each_check_refuses_with_its_code_and_return_reason(
    client, referrer, overrides, code, field, reason
):
    """The code says what is wrong with the field; the reason, why the referral is returned."""
    response = await client.post("/referrals", json=good_referral(**overrides), headers=referrer)
    assert response.status_code == 422, response.text
    assert {(e["code"], e["field"]) for e in response.json()["errors"]} == {(code, field)}
    assert response.json().get("reasons", []) == ([reason] if reason else [])
    assert await Referral.count() == 0


async def test_sixteen_on_the_day_of_referral_is_old_enough(client, referrer):
    body = good_referral(date_of_birth="2010-10-01", received_on="2026-10-01")
    response = await client.post("/referrals", json=body, headers=referrer)
    assert response.status_code == 201, response.text


async def test_every_failure_is_reported_together(client, referrer):
    body = good_referral(
        consent_given=False, phone=..., date_of_birth="2012-01-01", local_authority="York",
        relationship="other", on_probation_programme=True,
    )  # fmt: skip
    response = await client.post("/referrals", json=body, headers=referrer)
    assert response.status_code == 422
    problems = {(e["code"], e["field"]) for e in response.json()["errors"]}
    assert problems == {
        ("consent_missing", "consent_given"), ("required", "phone"),
        ("under_16", "date_of_birth"), ("out_of_area", "local_authority"),
        ("not_domestic_abuse", "relationship"),
        ("on_mandated_programme", "on_probation_programme"),
    }  # fmt: skip
    assert set(response.json()["reasons"]) == {
        "consent_missing", "no_contact_number", "under_16", "out_of_area",
        "not_domestic_abuse", "on_mandated_programme",
    }  # fmt: skip


async def test_a_refused_referral_is_kept_only_as_a_returned_referral(client, referrer):
    response = await client.post(
        "/referrals", json=good_referral(consent_given=False), headers=referrer
    )
    returned = await ReturnedReferral.select(
        ReturnedReferral.id,
        ReturnedReferral.agency.name.as_alias("agency"),
        ReturnedReferral.submitted_by.username.as_alias("submitted_by"),
        ReturnedReferral.received_on,
        ReturnedReferral.reasons,
    ).output(load_json=True)
    assert len(returned) == 1
    assert str(returned[0]["id"]) == response.json()["returned_referral_id"]
    assert returned[0]["agency"] == "South Yorkshire Police"
    assert returned[0]["submitted_by"] == "rita"
    assert str(returned[0]["received_on"]) == "2026-10-01"
    assert returned[0]["reasons"] == ["consent_missing"]
    assert await Person.count() == 0


async def test_no_personal_detail_of_a_refused_referral_reaches_any_table(client, referrer):
    body = good_referral(
        first_name="Zebedee", last_name="Quixotically", date_of_birth="1977-02-03",
        phone="0114 496 0777", notes="Lives at Xylophone Terrace", consent_given=False,
    )  # fmt: skip
    response = await client.post("/referrals", json=body, headers=referrer)
    assert response.status_code == 422
    traces = ["Zebedee", "Quixotically", "1977-02-03", "4960777", "496 0777", "Xylophone"]
    connection = await asyncpg.connect(**database.engine().config)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        for table in tables:
            rows = await connection.fetch(f'SELECT t::text AS row FROM "{table["tablename"]}" t')
            for row in rows:
                for trace in traces:
                    assert trace not in row["row"], (table["tablename"], trace)
    finally:
        await connection.close()


async def test_the_same_person_with_an_open_referral_gets_409_naming_it(client, referrer):
    first = await client.post("/referrals", json=good_referral(), headers=referrer)
    reference = first.json()["reference"]
    again = good_referral(first_name="  JORDAN ", last_name="test-person", received_on="2026-10-05")
    response = await client.post("/referrals", json=again, headers=referrer)
    assert response.status_code == 409
    assert response.json()["existing_reference"] == reference
    assert reference in response.json()["detail"]
    assert await Referral.count() == 1


async def test_the_same_birth_date_and_phone_is_the_same_person(client, referrer):
    await client.post("/referrals", json=good_referral(), headers=referrer)
    renamed = good_referral(first_name="Jordon", last_name="Smith", received_on="2026-10-05")
    response = await client.post("/referrals", json=renamed, headers=referrer)
    assert response.status_code == 409


async def test_after_a_referral_ends_a_new_one_is_linked_to_the_same_person(
    client, referrer, sign_in
):
    facilitator = await sign_in(Role.facilitator, "fran")
    first = (await client.post("/referrals", json=good_referral(), headers=referrer)).json()
    ended = await client.post(
        f"/referrals/{first['id']}/events",
        json={"type": "disengaged", "on": "2026-10-20"},
        headers=facilitator,
    )
    assert ended.status_code == 201, ended.text
    response = await client.post(
        "/referrals", json=good_referral(received_on="2026-11-02"), headers=referrer
    )
    assert response.status_code == 201, response.text
    assert response.json()["previous_referrals"] == 1
    assert await Person.count() == 1
    detail = await client.get(f"/referrals/{response.json()['id']}", headers=facilitator)
    assert detail.json()["previous_references"] == [first["reference"]]


async def test_a_reference_can_be_used_only_once(client, referrer):
    await client.post("/referrals", json=good_referral(reference="SYP-0001"), headers=referrer)
    other = good_referral(reference="SYP-0001", first_name="Casey", phone="0114 496 0456",
                          date_of_birth="1985-01-01")  # fmt: skip
    response = await client.post("/referrals", json=other, headers=referrer)
    assert response.status_code == 409
    assert response.json()["field"] == "reference"


async def test_facilitators_record_self_referrals(client, sign_in):
    facilitator = await sign_in(Role.facilitator, "fran")
    response = await client.post("/referrals", json=good_referral(), headers=facilitator)
    assert response.status_code == 201, response.text
    row = await Referral.select(Referral.agency.name.as_alias("agency")).first()
    assert row["agency"] == "Self-referral"


async def test_a_body_that_is_not_an_object_is_422(client, referrer):
    response = await client.post("/referrals", json=[1, 2], headers=referrer)
    assert response.status_code in (400, 422)
    assert response.json()["errors"]
    assert await ReturnedReferral.count() == 0
