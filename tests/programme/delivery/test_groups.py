"""Groups: creating them, places, capacity, transfers, sessions, facilitator scoping."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role

pytestmark = pytest.mark.anyio


async def test_a_facilitator_creates_a_group_and_sees_it(client, fran, group):
    listing = await client.get("/groups", headers=fran)
    assert [g["id"] for g in listing.json()["items"]] == [group]
    detail = (await client.get(f"/groups/{group}", headers=fran)).json()
    assert detail["facilitators"] == ["fran"]
    assert detail["capacity"] == 12


async def test_group_facilitators_must_be_facilitator_accounts(client, fran, sign_in):
    await sign_in(Role.referrer, "rita")
    response = await client.post(
        "/groups",
        json={"name": "G", "starts_on": "2026-06-01", "facilitators": ["fran", "rita", "ghost"],
              "capacity": 10},
        headers=fran,
    )  # fmt: skip
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"facilitators[1]", "facilitators[2]"}


async def test_bad_group_input_lists_every_problem(client, fran):
    response = await client.post(
        "/groups", json={"name": "", "starts_on": "soon", "capacity": 0}, headers=fran
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "name", "starts_on", "capacity", "facilitators",
    }  # fmt: skip


async def test_only_engaged_referrals_get_a_place(client, group, make_referrals, add_members, fran):
    contacted = await make_referrals(1, status="contacted")
    response = await client.post(
        f"/groups/{group}/members", json={"referral_id": contacted[0]}, headers=fran
    )
    assert response.status_code == 409
    engaged = await make_referrals(1, start=1)
    await add_members(group, engaged)
    members = (await client.get(f"/groups/{group}", headers=fran)).json()["members"]
    assert [m["referral_id"] for m in members] == engaged


async def test_a_full_group_refuses_with_409(client, fran, make_referrals, add_members):
    created = await client.post(
        "/groups",
        json={"name": "Small", "starts_on": "2026-06-01", "facilitators": ["fran"], "capacity": 2},
        headers=fran,
    )  # fmt: skip
    group_id = created.json()["id"]
    ids = await make_referrals(3)
    await add_members(group_id, ids[:2])
    response = await client.post(
        f"/groups/{group_id}/members", json={"referral_id": ids[2]}, headers=fran
    )
    assert response.status_code == 409
    assert response.json()["capacity"] == 2


async def test_moving_to_another_group_is_a_transfer(
    client, fran, group, make_referrals, add_members
):
    other = await client.post(
        "/groups",
        json={"name": "Sheffield Thursday", "starts_on": "2026-06-01", "facilitators": ["fran"],
              "capacity": 12},
        headers=fran,
    )  # fmt: skip
    ids = await make_referrals(1)
    await add_members(group, ids)
    await add_members(other.json()["id"], ids)
    assert (await client.get(f"/groups/{group}", headers=fran)).json()["members"] == []
    moved = (await client.get(f"/groups/{other.json()['id']}", headers=fran)).json()["members"]
    assert [m["referral_id"] for m in moved] == ids
    again = await client.post(
        f"/groups/{other.json()['id']}/members", json={"referral_id": ids[0]}, headers=fran
    )
    assert again.status_code == 409


async def test_sessions_are_numbered_once_per_group(client, fran, group, add_session):
    await add_session(group, 1, "2026-06-02")
    duplicate = await client.post(
        f"/groups/{group}/sessions", json={"number": 1, "held_on": "2026-06-09"}, headers=fran
    )
    assert duplicate.status_code == 409
    one_to_one = await add_session(group, 1, "2026-06-03", kind="one_to_one")
    assert one_to_one
    too_many = await client.post(
        f"/groups/{group}/sessions", json={"number": 25, "held_on": "2026-06-09"}, headers=fran
    )
    assert too_many.status_code == 422
    before_start = await client.post(
        f"/groups/{group}/sessions", json={"number": 2, "held_on": "2026-05-01"}, headers=fran
    )
    assert before_start.status_code == 422


async def test_a_facilitator_works_only_with_their_own_groups(
    client, group, sign_in, make_referrals, add_session
):
    other = await sign_in(Role.facilitator, "frank")
    session_id = await add_session(group, 1, "2026-10-06")
    ids = await make_referrals(1)
    assert (await client.get("/groups", headers=other)).json()["items"] == []
    assert (await client.get(f"/groups/{group}", headers=other)).status_code == 403
    assert (await client.post(f"/groups/{group}/members", json={"referral_id": ids[0]},
                              headers=other)).status_code == 403  # fmt: skip
    assert (await client.post(f"/groups/{group}/sessions", json={"number": 2,
            "held_on": "2026-10-13"}, headers=other)).status_code == 403  # fmt: skip
    assert (
        await client.get(f"/sessions/{session_id}/attendance", headers=other)
    ).status_code == 403
    response = await client.put(f"/sessions/{session_id}/attendance", json=[], headers=other)
    assert response.status_code == 403


async def test_admins_see_every_group(client, group, sign_in):
    admin = await sign_in(Role.admin, "alice")
    assert [g["id"] for g in (await client.get("/groups", headers=admin)).json()["items"]] == [
        group
    ]


async def test_programme_settings_are_admin_settings(client, sign_in, fran):
    admin = await sign_in(Role.admin, "alice")
    settings = (await client.get("/programme/settings", headers=fran)).json()
    assert settings == {
        "name": "Inspire to Change", "weeks": 26, "core_sessions": 24,
        "completion_min_sessions": 18, "exit_review_required": True, "at_risk_absences": 3,
    }  # fmt: skip
    assert (
        await client.put("/programme/settings", json={"weeks": 20}, headers=fran)
    ).status_code == 403
    changed = await client.put(
        "/programme/settings", json={"completion_min_sessions": 16, "weeks": 24}, headers=admin
    )
    assert changed.status_code == 200
    assert (changed.json()["completion_min_sessions"], changed.json()["weeks"]) == (16, 24)
    impossible = await client.put(
        "/programme/settings", json={"completion_min_sessions": 30}, headers=admin
    )
    assert impossible.status_code == 422
