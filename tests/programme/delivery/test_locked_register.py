"""The register and a reported (locked) quarter: marks on a session in it, and corrections
that would move a milestone dated in it, need an admin's reason."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role
from referrals.tables import ReferralEvent

pytestmark = pytest.mark.anyio

REPORTED = "Q2 2026-27"
IN_IT = "2026-09-10"


@pytest.fixture
async def alice(sign_in):
    return await sign_in(Role.admin, "alice")


@pytest.fixture
async def lock(client, alice):
    async def _lock():
        response = await client.put(f"/reports/locked-quarters/{REPORTED}", headers=alice)
        assert response.status_code == 200, response.text

    return _lock


async def reported_mark(client, headers):
    report = await client.get(
        "/reports/quarterly", params={"from": REPORTED, "to": REPORTED}, headers=headers
    )
    return report.json()["rows"][0]["reported"]


async def test_a_register_mark_in_a_locked_quarter_needs_an_admin_and_a_reason(
    client, alice, fran, group, make_referrals, add_members, add_session, mark, lock
):
    (a,) = await make_referrals(1, received_on="2026-08-01", moved_on="2026-08-02")
    await add_members(group, [a])
    session = await add_session(group, 1, IN_IT)
    await lock()
    refused = await mark(session, {a: "attended"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "quarter_locked"
    assert await ReferralEvent.count().where(ReferralEvent.type == "started") == 0
    body = [{"referral_id": a, "status": "attended"}]
    overridden = await client.put(
        f"/sessions/{session}/attendance",
        params={"override_reason": "Register found in the cupboard."},
        json=body,
        headers=alice,
    )
    assert overridden.status_code == 200, overridden.text
    assert await ReferralEvent.count().where(ReferralEvent.type == "started") == 1
    assert await reported_mark(client, alice) == "revised since reported"


async def test_a_register_in_an_open_quarter_that_moves_a_milestone_into_a_locked_one_is_refused(
    client, alice, fran, group, make_referrals, add_members, add_session, mark, lock
):
    """Marks dated after the lock can still move figures in it: a start is dated on the
    first session attended, so undoing the only attendance in the locked quarter is refused."""
    (a,) = await make_referrals(1, received_on="2026-08-01", moved_on="2026-08-02")
    await add_members(group, [a])
    first = await add_session(group, 1, "2026-09-29")
    assert (await mark(first, {a: "attended"})).status_code == 200
    await lock()
    second = await add_session(group, 2, "2026-10-06")
    assert (await mark(second, {a: "attended"})).status_code == 200  # the start stays put
    undo = await mark(first, {a: "absent"})
    assert undo.status_code == 409, undo.text
    started = await ReferralEvent.select(ReferralEvent.occurred_on).where(
        ReferralEvent.type == "started"
    )
    assert [str(s["occurred_on"]) for s in started] == ["2026-09-29"]
