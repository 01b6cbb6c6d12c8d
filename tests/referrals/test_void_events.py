"""Voiding a mistaken lifecycle step: it stays, struck through; the status, the next
steps and every report follow from the steps that remain; and what cannot be voided."""

from __future__ import annotations

from datetime import date

import pytest

from analysis import queries as analysis_queries
from programme.delivery import queries as delivery_queries
from programme.platform import database
from programme.platform.tables import AuditEvent, Role
from referrals.tables import ReferralEvent
from tests.builders import good_referral

pytestmark = pytest.mark.anyio


@pytest.fixture
async def facilitator(sign_in):
    return await sign_in(Role.facilitator, "fran")


@pytest.fixture
async def referrer(sign_in):
    return await sign_in(Role.referrer, "rita")


@pytest.fixture
async def referral_id(client, referrer):
    response = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def move(client, headers, referral_id, type_, on):
    response = await client.post(
        f"/referrals/{referral_id}/events", json={"type": type_, "on": on}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()[-1]


async def void(client, headers, referral_id, event_id, reason="Recorded on the wrong person"):
    return await client.post(
        f"/referrals/{referral_id}/events/{event_id}/void", json={"reason": reason},
        headers=headers,
    )  # fmt: skip


async def test_a_voided_step_stays_struck_through_and_the_status_steps_back(
    client, facilitator, referral_id
):
    await move(client, facilitator, referral_id, "contacted", "2026-10-02")
    engaged = await move(client, facilitator, referral_id, "engaged", "2026-10-09")
    response = await void(client, facilitator, referral_id, engaged["id"])
    assert response.status_code == 200, response.text
    record = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    assert (record["status"], record["status_on"]) == ("contacted", "2026-10-02")
    struck = record["timeline"][-1]
    assert struck["type"] == "engaged" and struck["voided"] is True
    assert struck["voided_by"] == "fran"
    assert struck["void_reason"] == "Recorded on the wrong person"
    assert struck["voided_at"] is not None
    assert await ReferralEvent.count() == 3  # never deleted
    # The next step follows from what remains: engaged may be recorded again.
    again = await move(client, facilitator, referral_id, "engaged", "2026-10-10")
    assert again["type"] == "engaged" and again["voided"] is False


async def test_the_acceptance_cannot_be_voided(client, facilitator, referral_id):
    record = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    response = await void(client, facilitator, referral_id, record["timeline"][0]["id"])
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "cannot_void_acceptance"


async def test_only_the_latest_step_is_voided_and_only_once(client, facilitator, referral_id):
    contacted = await move(client, facilitator, referral_id, "contacted", "2026-10-02")
    engaged = await move(client, facilitator, referral_id, "engaged", "2026-10-09")
    earlier = await void(client, facilitator, referral_id, contacted["id"])
    assert earlier.status_code == 409
    assert earlier.json()["errors"][0]["code"] == "not_latest"
    assert (await void(client, facilitator, referral_id, engaged["id"])).status_code == 200
    twice = await void(client, facilitator, referral_id, engaged["id"])
    assert twice.status_code == 409
    assert twice.json()["errors"][0]["code"] == "already_voided"
    # With engaged voided, contacted is the latest and may go.
    assert (await void(client, facilitator, referral_id, contacted["id"])).status_code == 200
    record = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    assert record["status"] == "accepted"


async def test_a_reason_is_required(client, facilitator, referral_id):
    contacted = await move(client, facilitator, referral_id, "contacted", "2026-10-02")
    response = await void(client, facilitator, referral_id, contacted["id"], reason="")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reason"
    blank = await void(client, facilitator, referral_id, contacted["id"], reason="   ")
    assert blank.status_code == 422
    assert blank.json()["errors"][0]["code"] == "required"


async def test_a_step_of_another_referral_is_not_found(client, facilitator, referrer):
    first = (await client.post("/referrals", json=good_referral(), headers=referrer)).json()
    other = (
        await client.post(
            "/referrals",
            json=good_referral(first_name="Alex", phone="0114 496 0321"),
            headers=referrer,
        )
    ).json()
    contacted = await move(client, facilitator, first["id"], "contacted", "2026-10-02")
    assert (await void(client, facilitator, other["id"], contacted["id"])).status_code == 404


async def test_voided_steps_count_in_no_report(client, facilitator, referral_id):
    await move(client, facilitator, referral_id, "contacted", "2026-10-02")
    engaged = await move(client, facilitator, referral_id, "engaged", "2026-10-09")
    await void(client, facilitator, referral_id, engaged["id"])
    (quarter,) = await database.fetch(
        analysis_queries.QUARTERLY_SQL, date(2026, 10, 1), date(2026, 12, 31), ["Q3 2026-27"]
    )
    assert (quarter["contacted"], quarter["engaging"]) == (1, 0)
    assert (quarter["cohort_contacted"], quarter["cohort_engaged"]) == (1, 0)
    (cohort,) = await database.fetch(analysis_queries.COHORT_SQL, date(2026, 11, 27))
    assert cohort["days_to_engaged"] is None
    (quality,) = await database.fetch(
        analysis_queries.QUALITY_SQL, date(2026, 10, 1), date(2026, 12, 31)
    )
    assert quality["engaged"] == 0
    rows = await database.fetch(delivery_queries.STATUS_AND_ENGAGED_ON, [referral_id])
    assert rows[0]["engaged_on"] is None


async def test_a_voided_step_is_left_out_of_the_referrers_and_monitors_views(
    client, facilitator, referrer, sign_in, referral_id
):
    contacted = await move(client, facilitator, referral_id, "contacted", "2026-10-02")
    await void(client, facilitator, referral_id, contacted["id"])
    monitor = await sign_in(Role.monitor, "mo")
    for headers in (referrer, monitor):
        record = (await client.get(f"/referrals/{referral_id}", headers=headers)).json()
        assert [s["type"] for s in record["timeline"]] == ["accepted"]
        assert record["status"] == "accepted"


async def test_voiding_a_withdrawal_lifts_the_restriction(client, facilitator, referral_id):
    withdrawn = await move(client, facilitator, referral_id, "withdrawn", "2026-10-03")
    restricted = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    assert restricted["first_name"] is None
    assert (await void(client, facilitator, referral_id, withdrawn["id"])).status_code == 200
    record = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    assert (record["status"], record["first_name"]) == ("accepted", "Jordan")


async def test_reopening_is_refused_while_the_person_has_another_open_referral(
    client, facilitator, referrer, referral_id
):
    closed = await move(client, facilitator, referral_id, "closed", "2026-10-03")
    again = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert again.status_code == 201, again.text
    response = await void(client, facilitator, referral_id, closed["id"])
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "already_referred"
    record = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    assert record["status"] == "closed" and not record["timeline"][-1]["voided"]


async def test_the_history_shows_the_void_and_the_audit_names_no_one(
    client, facilitator, referral_id
):
    contacted = await move(client, facilitator, referral_id, "contacted", "2026-10-02")
    await void(client, facilitator, referral_id, contacted["id"])
    history = (await client.get(f"/referrals/{referral_id}/history", headers=facilitator)).json()
    (entry,) = history["entries"]
    assert (entry["kind"], entry["event_type"], entry["event_on"], entry["by"]) == (
        "void", "contacted", "2026-10-02", "fran",
    )  # fmt: skip
    assert entry["reason"] == "Recorded on the wrong person"
    rows = await AuditEvent.select(AuditEvent.detail).where(
        (AuditEvent.record_id == referral_id) & (AuditEvent.action == "update")
    )
    assert any("void_event" in str(r["detail"]) for r in rows)
    assert "wrong person" not in str(rows)


@pytest.mark.parametrize("role", [Role.referrer, Role.monitor, Role.victim_worker])
async def test_only_facilitators_and_admins_void(client, sign_in, facilitator, referral_id, role):
    contacted = await move(client, facilitator, referral_id, "contacted", "2026-10-02")
    headers = await sign_in(role, f"someone-{role.value}")
    assert (await void(client, headers, referral_id, contacted["id"])).status_code == 403
    assert await ReferralEvent.count().where(ReferralEvent.voided_at.is_not_null()) == 0


async def test_an_admin_may_void(client, sign_in, facilitator, referral_id):
    contacted = await move(client, facilitator, referral_id, "contacted", "2026-10-02")
    admin = await sign_in(Role.admin, "ada")
    assert (await void(client, admin, referral_id, contacted["id"])).status_code == 200
