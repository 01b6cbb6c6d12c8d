"""Simultaneous corrections: each waits for the other's lock, so none is lost and no
check is passed on a state another is changing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from outcomes.tables import FeedbackVersion, Victim
from programme.platform import database
from programme.platform.tables import Role
from referrals.tables import Person, Referral
from tests.builders import VICTIM, distinct_referral, good_referral

pytestmark = pytest.mark.anyio


@pytest.fixture
async def facilitator(sign_in):
    return await sign_in(Role.facilitator, "fran")


@pytest.fixture
async def referrer(sign_in):
    return await sign_in(Role.referrer, "rita")


async def submit(client, headers, body):
    response = await client.post("/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def step(client, headers, referral_id, type_, on):
    response = await client.post(
        f"/referrals/{referral_id}/events", json={"type": type_, "on": on}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()[-1]["id"]


async def test_two_voids_of_one_step_void_it_once(client, facilitator, referrer):
    referral_id = await submit(client, referrer, good_referral())
    await step(client, facilitator, referral_id, "contacted", "2026-10-02")
    engaged = await step(client, facilitator, referral_id, "engaged", "2026-10-03")
    url = f"/referrals/{referral_id}/events/{engaged}/void"
    responses = await asyncio.gather(
        *[client.post(url, json={"reason": f"try {n}"}, headers=facilitator) for n in range(2)]
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    row = await Referral.select(Referral.status).where(Referral.id == referral_id).first()
    assert row["status"] == "contacted"


async def test_a_void_and_a_new_step_at_once_leave_a_status_that_follows_the_steps(
    client, facilitator, referrer
):
    referral_id = await submit(client, referrer, good_referral())
    contacted = await step(client, facilitator, referral_id, "contacted", "2026-10-02")
    voided, moved = await asyncio.gather(
        client.post(
            f"/referrals/{referral_id}/events/{contacted}/void",
            json={"reason": "wrong person"}, headers=facilitator,
        ),
        client.post(
            f"/referrals/{referral_id}/events",
            json={"type": "engaged", "on": "2026-10-03"}, headers=facilitator,
        ),
    )  # fmt: skip
    assert sorted((voided.status_code, moved.status_code)) in ([200, 409], [201, 409])
    record = (await client.get(f"/referrals/{referral_id}", headers=facilitator)).json()
    counting = [s for s in record["timeline"] if not s["voided"]]
    assert record["status"] == counting[-1]["type"]


async def test_two_referrals_corrected_into_one_person_at_once_are_not_both_accepted(
    client, facilitator, referrer
):
    first = await submit(client, referrer, distinct_referral(1))
    second = await submit(client, referrer, distinct_referral(2))
    same = {"first_name": "Samuel", "last_name": "Sameperson", "date_of_birth": "1980-01-01"}
    # Hold both people's rows, so both corrections are under way before either is written:
    # the second must still find the first's new identity, not an empty match.
    holder = await asyncpg.connect(**database.engine().config)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM person FOR UPDATE")
        corrections = [
            asyncio.ensure_future(
                client.patch(f"/referrals/{r}", json=same | {"reason": "x"}, headers=facilitator)
            )
            for r in (first, second)
        ]
        await asyncio.sleep(1.5)
        await held.rollback()
        responses = await asyncio.gather(*corrections)
    finally:
        await holder.close()
    assert sorted(r.status_code for r in responses) == [200, 409]
    keys = [p["match_key"] for p in await Person.select(Person.match_key)]
    assert len(keys) == len(set(keys))


async def test_simultaneous_feedback_corrections_each_keep_the_version_they_replaced(
    client, sign_in, referrer
):
    await submit(client, referrer, good_referral(victims=[VICTIM]))
    worker = await sign_in(Role.victim_worker, "vic")
    (victim,) = await Victim.select(Victim.id)
    url = f"/victims/{victim['id']}/feedback"
    base = {"stage": "intake", "collected_on": "2026-10-05", "behaviour": "same",
            "feels_safer": "unsure"}  # fmt: skip
    assert (await client.post(url, json=base | {"note": "v0"}, headers=worker)).status_code == 201
    # Hold the feedback row, so both corrections are under way before either writes it:
    # each must then keep the version the other replaced, not both the first one.
    holder = await asyncpg.connect(**database.engine().config)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM feedback WHERE victim = $1 FOR UPDATE", victim["id"])
        corrections = [
            asyncio.ensure_future(client.post(url, json=base | {"note": f"v{n}"}, headers=worker))
            for n in (1, 2)
        ]
        await asyncio.sleep(1.5)
        await held.rollback()
        responses = await asyncio.gather(*corrections)
    finally:
        await holder.close()
    assert all(r.status_code == 201 for r in responses)
    (current,) = (await client.get(url, headers=worker)).json()
    kept = [v["note"] for v in current["earlier"]]
    assert await FeedbackVersion.count() == 2
    assert sorted([*kept, current["note"]]) == ["v0", "v1", "v2"]
