"""The waiting list: engaged people with no group place, and how long they have waited."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role

pytestmark = pytest.mark.anyio


async def test_engaged_people_without_a_place_are_waiting(
    client, fran, group, make_referrals, add_members, sign_in
):
    early = await make_referrals(1, moved_on="2026-10-02")
    late = await make_referrals(2, start=1, moved_on="2026-11-02")
    await make_referrals(1, status="contacted", start=5)
    waiting = (await client.get("/programme/waiting-list", headers=fran)).json()
    assert waiting["count"] == 3
    assert waiting["people"]["total"] == 3
    assert waiting["people"]["items"][0]["referral_id"] == early[0]
    days = [p["days_waiting"] for p in waiting["people"]["items"]]
    assert days[0] - days[1] == 31
    assert waiting["longest_days_waiting"] == days[0]
    assert waiting["median_days_waiting"] == days[1]

    await add_members(group, late[:1])
    after = (await client.get("/programme/waiting-list", headers=fran)).json()
    assert after["count"] == 2
    assert late[0] not in [p["referral_id"] for p in after["people"]["items"]]

    monitor = await sign_in(Role.monitor, "mo")
    summary = (await client.get("/programme/waiting-list", headers=monitor)).json()
    assert summary["count"] == 2
    assert summary["people"] is None
    assert summary["median_days_waiting"] == (days[0] + days[1]) / 2
