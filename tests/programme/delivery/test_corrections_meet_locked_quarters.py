"""Corrections and reported quarters together: a void, a moved received date or a moved
session that would change a reported quarter's figures needs an admin's reason, like
any other write; one session of a kind a day holds when a session is moved, and a
cancelled session leaves its day free.

Q2 2026-27 (July to September 2026) is the reported quarter throughout.
"""

from __future__ import annotations

import json

import pytest

from programme.platform.tables import AuditEvent, Role
from tests.builders import distinct_referral

pytestmark = pytest.mark.anyio

REPORTED = "Q2 2026-27"


@pytest.fixture
async def alice(sign_in):
    return await sign_in(Role.admin, "alice")


@pytest.fixture
async def lock(client, alice):
    async def _lock():
        response = await client.put(f"/reports/locked-quarters/{REPORTED}", headers=alice)
        assert response.status_code == 200, response.text

    return _lock


async def referral_received(client, sign_in, on, n=0):
    rita = await sign_in(Role.referrer, f"rita{n}")
    body = distinct_referral(n, received_on=on, consent_obtained_on="2026-08-28")
    response = await client.post("/referrals", json=body, headers=rita)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def revisions(client, alice):
    listed = await client.get("/reports/locked-quarters", headers=alice)
    return next(q for q in listed.json() if q["quarter"] == REPORTED)["revisions"]


async def test_voiding_a_step_in_a_reported_quarter_needs_an_admins_reason(
    client, fran, alice, lock, sign_in
):
    referral_id = await referral_received(client, sign_in, "2026-09-01")
    moved = await client.post(
        f"/referrals/{referral_id}/events", json={"type": "contacted", "on": "2026-09-15"},
        headers=fran,
    )  # fmt: skip
    assert moved.status_code == 201, moved.text
    step = moved.json()[-1]["id"]
    await lock()
    path = f"/referrals/{referral_id}/events/{step}/void"
    refused = await client.post(path, json={"reason": "Wrong person"}, headers=fran)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "quarter_locked"
    # A facilitator's override is not an override.
    still = await client.post(
        path, json={"reason": "Wrong person", "override_reason": "I say so"}, headers=fran
    )
    assert still.status_code == 409
    assert await revisions(client, alice) == 0
    done = await client.post(
        path, json={"reason": "Wrong person", "override_reason": "Contract manager agreed"},
        headers=alice,
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()[-1]["voided"] is True
    assert await revisions(client, alice) == 1
    overrides = await AuditEvent.select(AuditEvent.detail).where(
        AuditEvent.record_type == "locked_quarter"
    )  # fmt: skip
    assert any(
        json.loads(row["detail"] or "{}").get("override_reason") == "Contract manager agreed"
        for row in overrides
    )


async def test_moving_the_received_date_into_a_reported_quarter_is_refused_but_notes_are_not(
    client, fran, alice, lock, sign_in
):
    referral_id = await referral_received(client, sign_in, "2026-10-05")
    old = await referral_received(client, sign_in, "2026-09-03", n=1)
    await lock()
    into = await client.patch(
        f"/referrals/{referral_id}",
        json={"received_on": "2026-09-20", "reason": "Typed the wrong month"}, headers=fran,
    )  # fmt: skip
    assert into.status_code == 409, into.text
    assert into.json()["errors"][0]["code"] == "quarter_locked"
    notes = await client.patch(
        f"/referrals/{referral_id}", json={"notes": "Prefers mornings", "reason": "Asked"},
        headers=fran,
    )  # fmt: skip
    assert notes.status_code == 200, notes.text
    # A referral received in the reported quarter keeps its correctable details too:
    # nothing in the published counts reads them.
    spelling = await client.patch(
        f"/referrals/{old}", json={"notes": "Interpreter: Polish", "reason": "Asked"},
        headers=fran,
    )  # fmt: skip
    assert spelling.status_code == 200, spelling.text
    assert await revisions(client, alice) == 0


async def test_a_session_in_a_reported_quarter_moves_only_with_an_admins_reason(
    client, fran, alice, group, add_session, lock
):
    session_id = await add_session(group, 1, "2026-09-08")
    await lock()
    body = {"held_on": "2026-10-06", "reason": "Entered on the wrong week"}
    refused = await client.patch(f"/sessions/{session_id}", json=body, headers=fran)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "quarter_locked"
    cancelled = await client.post(
        f"/sessions/{session_id}/cancel", json={"reason": "Never held"}, headers=fran
    )
    assert cancelled.status_code == 409
    moved = await client.patch(
        f"/sessions/{session_id}", json=body | {"override_reason": "Register was wrong"},
        headers=alice,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert await revisions(client, alice) == 1


async def test_a_session_is_not_moved_onto_a_day_its_group_already_meets(
    client, fran, group, add_session
):
    first = await add_session(group, 1, "2026-12-01")
    await add_session(group, 2, "2026-12-08")
    clash = await client.patch(
        f"/sessions/{first}", json={"held_on": "2026-12-08", "reason": "Moved"}, headers=fran
    )
    assert clash.status_code == 409, clash.text
    assert clash.json()["errors"][0]["code"] == "session_that_day"
    # A one-to-one may share the day with the group session.
    one_to_one = await add_session(group, 3, "2026-12-15", kind="one_to_one")
    await add_session(group, 4, "2026-12-15")
    shared = await client.patch(
        f"/sessions/{one_to_one}", json={"held_on": "2026-12-08", "reason": "Moved"}, headers=fran
    )
    assert shared.status_code == 200, shared.text


async def test_a_cancelled_session_leaves_its_day_free_for_another(
    client, fran, group, add_session
):
    first = await add_session(group, 1, "2026-12-01")
    cancelled = await client.post(
        f"/sessions/{first}/cancel", json={"reason": "Room flooded"}, headers=fran
    )
    assert cancelled.status_code == 200, cancelled.text
    await add_session(group, 2, "2026-12-01")
