"""One vocabulary of errors, as a new user meets it: the same kind of mistake gets
the same code and the same words wherever it is made, and every error answer has
the one shape (``errors`` listing at least one problem with a code).
"""

from __future__ import annotations

import uuid

import pytest

from outcomes.tables import Stage
from programme.platform.tables import RecordType, Role
from referrals.rules import ConsentMethod, Gender, Status
from tests.builders import good_referral

pytestmark = pytest.mark.anyio

DATE = "Expected a date as YYYY-MM-DD."
NO_SUCH_ID = str(uuid.uuid4())


@pytest.fixture
async def staff(sign_in):
    return {
        "referrer": await sign_in(Role.referrer, "rita"),
        "facilitator": await sign_in(Role.facilitator, "fran"),
        "admin": await sign_in(Role.admin, "alice"),
        "monitor": await sign_in(Role.monitor, "mo"),
        "victim_worker": await sign_in(Role.victim_worker, "vic"),
    }


def problem(response, field: str) -> dict[str, str]:
    assert response.status_code == 422, response.text
    found = [e for e in response.json()["errors"] if e["field"] == field]
    assert len(found) == 1, response.text
    return found[0]


async def test_a_bad_date_has_one_code_and_one_message_wherever_it_is_given(client, staff):
    bad = "2026-13-01"
    answers = {
        "referral body": (
            await client.post(
                "/referrals", json=good_referral(date_of_birth=bad), headers=staff["referrer"]
            ),
            "date_of_birth",
        ),
        "victim in a referral": (
            await client.post(
                "/referrals",
                json=good_referral(
                    victims=[
                        {
                            "first_name": "V",
                            "relationship": "partner",
                            "consent_to_contact": True,
                            "consent_obtained_on": bad,
                        }
                    ]
                ),
                headers=staff["referrer"],
            ),
            "victims[0].consent_obtained_on",
        ),
        "event body": (
            await client.post(
                f"/referrals/{NO_SUCH_ID}/events",
                json={"type": "contacted", "on": bad},
                headers=staff["facilitator"],
            ),
            "on",
        ),
        "group body": (
            await client.post(
                "/groups",
                json={"name": "G", "starts_on": bad, "facilitators": ["fran"], "capacity": 8},
                headers=staff["facilitator"],
            ),
            "starts_on",
        ),
        "query parameter": (
            await client.get("/referrals", params={"received_from": bad}, headers=staff["admin"]),
            "received_from",
        ),
        "analysis query": (
            await client.get(
                "/analysis/reoffending", params={"as_of": bad}, headers=staff["monitor"]
            ),
            "as_of",
        ),
    }
    for where, (response, field) in answers.items():
        assert problem(response, field) == {"code": "invalid", "field": field, "message": DATE}, (
            where
        )


async def test_a_date_in_the_future_has_one_code_wherever_it_is_given(client, staff):
    future = "2099-01-01"
    referral = await client.post(
        "/referrals", json=good_referral(received_on=future), headers=staff["referrer"]
    )
    event = await client.post(
        f"/referrals/{NO_SUCH_ID}/events",
        json={"type": "contacted", "on": future},
        headers=staff["facilitator"],
    )
    expected = {"code": "future_date", "message": "Cannot be in the future."}
    for response, field in ((referral, "received_on"), (event, "on")):
        assert problem(response, field) == {**expected, "field": field}


def lists_every_choice(message: str, choices: list[str]) -> bool:
    return message == "Expected one of: " + ", ".join(choices) + "."


async def test_a_value_that_is_not_one_of_the_choices_is_told_the_choices(client, staff):
    statuses = [s.value for s in Status]
    answers = [
        (
            await client.get("/referrals", params={"status": "lost"}, headers=staff["admin"]),
            "status",
            statuses,
        ),
        (
            await client.post(
                f"/referrals/{NO_SUCH_ID}/events",
                json={"type": "lost", "on": "2026-10-02"},
                headers=staff["facilitator"],
            ),
            "type",
            statuses,
        ),
        (
            await client.post(
                "/referrals", json=good_referral(gender="lizard"), headers=staff["referrer"]
            ),
            "gender",
            [g.value for g in Gender],
        ),
        (
            await client.get("/audit", params={"record_type": "lost"}, headers=staff["admin"]),
            "record_type",
            [r.value for r in RecordType],
        ),
        (
            await client.post(
                f"/victims/{NO_SUCH_ID}/feedback",
                json={
                    "stage": "lost",
                    "collected_on": "2026-10-02",
                    "behaviour": "same",
                    "feels_safer": "yes",
                },
                headers=staff["victim_worker"],
            ),
            "stage",
            [s.value for s in Stage],
        ),
        (
            await client.get(
                "/reports/quarterly", params={"format": "xml"}, headers=staff["monitor"]
            ),
            "format",
            ["json", "csv", "xlsx"],
        ),
    ]
    for response, field, choices in answers:
        error = problem(response, field)
        assert error["code"] == "invalid", error
        assert lists_every_choice(error["message"], choices), error


async def test_an_unreadable_consent_method_is_invalid_not_consent_missing(client, staff):
    response = await client.post(
        "/referrals", json=good_referral(consent_method="telepathy"), headers=staff["referrer"]
    )
    error = problem(response, "consent_method")
    assert error["code"] == "invalid"
    assert lists_every_choice(error["message"], [m.value for m in ConsentMethod])
    # Still returned for want of consent evidence, as the referral-quality report counts it.
    assert response.json()["reasons"] == ["consent_missing"]


async def test_a_missing_and_an_unreadable_phone_number_are_told_apart(client, staff):
    missing = problem(
        await client.post("/referrals", json=good_referral(phone=...), headers=staff["referrer"]),
        "phone",
    )
    unreadable = problem(
        await client.post(
            "/referrals", json=good_referral(phone="0800 123 4567"), headers=staff["referrer"]
        ),
        "phone",
    )
    assert missing["code"] == "required"
    assert unreadable["code"] == "invalid"
    assert missing["message"] != unreadable["message"]
    assert "landline or mobile" in unreadable["message"]


async def test_a_missing_field_has_one_code_and_message_in_every_body(client, staff):
    referral = await client.post(
        "/referrals", json=good_referral(last_name=...), headers=staff["referrer"]
    )
    login = await client.post("/auth/login", json={"password": "x"})
    event = await client.post(
        f"/referrals/{NO_SUCH_ID}/events", json={"type": "contacted"}, headers=staff["facilitator"]
    )
    for response, field in ((referral, "last_name"), (login, "username"), (event, "on")):
        assert problem(response, field) == {
            "code": "required",
            "field": field,
            "message": "This field is required.",
        }


def assert_one_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    assert body["detail"]
    assert body["errors"], body
    assert body["errors"][0]["code"] == code, body
    assert all(set(e) == {"code", "field", "message"} for e in body["errors"])
    return body


async def test_a_conflict_has_the_one_error_shape_with_a_code(client, staff):
    first = await client.post("/referrals", json=good_referral(), headers=staff["referrer"])
    assert first.status_code == 201, first.text
    again = await client.post("/referrals", json=good_referral(), headers=staff["referrer"])
    body = assert_one_shape(again, 409, "already_referred")
    assert body["existing_reference"] == first.json()["reference"]

    referral_id = first.json()["id"]
    skipped = await client.post(
        f"/referrals/{referral_id}/events",
        json={"type": "started", "on": "2026-10-02"},
        headers=staff["facilitator"],
    )
    body = assert_one_shape(skipped, 409, "not_allowed_now")
    assert body["errors"][0]["field"] == "type"
    assert body["allowed"] == ["contacted", "disengaged", "withdrawn", "closed"]
    assert "contacted, disengaged, withdrawn, closed" in body["errors"][0]["message"]

    agency = {"name": "Rotherham Early Help"}
    assert (await client.post("/agencies", json=agency, headers=staff["admin"])).status_code == 201
    twice = await client.post("/agencies", json=agency, headers=staff["admin"])
    assert_one_shape(twice, 409, "conflict")


async def test_every_kind_of_refusal_lists_a_problem_with_a_code(client, staff):
    assert_one_shape(await client.get("/referrals"), 401, "not_signed_in")
    assert_one_shape(await client.get("/audit", headers=staff["referrer"]), 403, "not_permitted")
    assert_one_shape(
        await client.get(f"/referrals/{NO_SUCH_ID}", headers=staff["admin"]), 404, "not_found"
    )
    assert_one_shape(await client.get("/no-such-page", headers=staff["admin"]), 404, "not_found")
    assert_one_shape(await client.delete("/referrals", headers=staff["admin"]), 405,
                     "method_not_allowed")  # fmt: skip
    assert_one_shape(
        await client.post(
            "/auth/login", content=b"{", headers={"Content-Type": "application/json"}
        ),
        400,
        "invalid",
    )
