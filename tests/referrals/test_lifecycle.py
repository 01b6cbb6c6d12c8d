"""The dated lifecycle: order, dates, exits, withdrawal, and simultaneous changes."""

from __future__ import annotations

import asyncio

import pytest

from programme.platform.tables import Role
from referrals.tables import ReferralEvent
from tests.builders import good_referral

pytestmark = pytest.mark.anyio


@pytest.fixture
async def facilitator(sign_in):
    return await sign_in(Role.facilitator, "fran")


@pytest.fixture
async def referral_id(client, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    response = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def move(client, headers, referral_id, type_, on, note=None):
    body = {"type": type_, "on": on} | ({"note": note} if note else {})
    return await client.post(f"/referrals/{referral_id}/events", json=body, headers=headers)


@pytest.mark.smoke
async def test_a_referral_moves_through_every_milestone_with_its_dates(
    client, facilitator, referral_id
):
    steps = [
        ("contacted", "2026-10-02"),
        ("engaged", "2026-10-09"),
        ("started", "2026-10-16"),
        ("completed", "2026-11-13"),
    ]
    for type_, on in steps:
        response = await move(client, facilitator, referral_id, type_, on)
        assert response.status_code == 201, response.text
    detail = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    assert detail["status"] == "completed"
    assert detail["status_on"] == "2026-11-13"
    assert [(s["type"], s["on"]) for s in detail["timeline"]] == [
        ("accepted", "2026-10-01"),
        *steps,
    ]
    assert {s["recorded_by"] for s in detail["timeline"][1:]} == {"fran"}


async def test_a_milestone_may_be_dated_in_the_past_and_carry_a_note(
    client, facilitator, referral_id
):
    response = await move(client, facilitator, referral_id, "contacted", "2026-10-01", "By phone")
    assert response.status_code == 201
    step = response.json()[-1]
    assert isinstance(step.pop("id"), int)
    assert step == {
        "type": "contacted", "on": "2026-10-01", "note": "By phone", "recorded_by": "fran",
        "voided": False, "voided_at": None, "voided_by": None, "void_reason": None,
    }  # fmt: skip


async def test_skipping_a_milestone_is_409_listing_the_allowed_next_types(
    client, facilitator, referral_id
):
    response = await move(client, facilitator, referral_id, "started", "2026-10-05")
    assert response.status_code == 409
    assert response.json()["allowed"] == ["contacted", "disengaged", "withdrawn", "closed"]
    assert await ReferralEvent.count() == 1


async def test_a_date_in_the_future_is_refused(client, facilitator, referral_id):
    response = await move(client, facilitator, referral_id, "contacted", "2099-01-01")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "on"


async def test_a_date_before_the_previous_milestone_is_refused(client, facilitator, referral_id):
    await move(client, facilitator, referral_id, "contacted", "2026-10-10")
    response = await move(client, facilitator, referral_id, "engaged", "2026-10-09")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "before_previous_milestone"
    before_acceptance = await move(client, facilitator, referral_id, "engaged", "2026-09-01")
    assert before_acceptance.status_code == 422


@pytest.mark.parametrize("exit_type", ["disengaged", "withdrawn", "closed"])
@pytest.mark.parametrize("progress", [[], ["contacted"], ["contacted", "engaged", "started"]])
async def test_a_referral_can_end_early_from_any_open_status(
    client, facilitator, referral_id, exit_type, progress
):
    for type_ in progress:
        assert (
            await move(client, facilitator, referral_id, type_, "2026-10-05")
        ).status_code == 201
    response = await move(client, facilitator, referral_id, exit_type, "2026-10-06")
    assert response.status_code == 201, response.text
    after = await move(client, facilitator, referral_id, "contacted", "2026-10-07")
    assert after.status_code == 409
    assert after.json()["allowed"] == []


async def test_withdrawn_consent_withholds_personal_details_and_stops_processing(
    client, facilitator, referral_id, sign_in
):
    await move(client, facilitator, referral_id, "withdrawn", "2026-10-03", "Asked to stop")
    admin = await sign_in(Role.admin, "alice")
    for headers in (facilitator, admin):
        detail = (await client.get(f"/referrals/{referral_id}", headers=headers)).json()
        assert detail["restricted"] is True
        assert detail["first_name"] is None and detail["phone"] is None
        assert detail["date_of_birth"] is None and detail["notes"] is None
        assert "Jordan" not in str(detail)
        # What statistics need stays: dates and status.
        assert detail["status"] == "withdrawn" and detail["received_on"] == "2026-10-01"
    listing = await client.get("/referrals", headers=facilitator)
    assert "Jordan" not in listing.text
    assert (await move(client, facilitator, referral_id, "closed", "2026-10-04")).status_code == 409


async def test_an_unknown_referral_is_404(client, facilitator):
    response = await move(
        client, facilitator, "5f0c2b1e-9d7a-4c1e-8f59-2d7d0b8a1c33", "contacted", "2026-10-02"
    )
    assert response.status_code == 404


async def test_referrers_cannot_move_referrals_on(client, referral_id, sign_in):
    referrer = await sign_in(Role.referrer, "rob")
    response = await move(client, referrer, referral_id, "contacted", "2026-10-02")
    assert response.status_code == 403


async def test_two_simultaneous_transitions_cannot_both_win(
    client, facilitator, referral_id, sign_in
):
    other = await sign_in(Role.facilitator, "frank")
    attempts = 6
    results = await asyncio.gather(
        *(
            move(client, (facilitator, other)[i % 2], referral_id, "contacted", "2026-10-02")
            for i in range(attempts)
        )
    )
    assert sorted(r.status_code for r in results) == [201] + [409] * (attempts - 1)
    assert await ReferralEvent.count().where(ReferralEvent.type == "contacted") == 1


async def test_simultaneous_different_transitions_leave_one_consistent_history(
    client, facilitator, referral_id
):
    results = await asyncio.gather(
        move(client, facilitator, referral_id, "contacted", "2026-10-02"),
        move(client, facilitator, referral_id, "closed", "2026-10-02"),
        move(client, facilitator, referral_id, "withdrawn", "2026-10-02"),
    )
    assert sum(r.status_code == 201 for r in results) in (1, 2)
    detail = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    types = [s["type"] for s in detail["timeline"]]
    # Never two exits, never an exit followed by anything.
    assert sum(t in ("closed", "withdrawn") for t in types) <= 1
    assert types[-1] == detail["status"]
