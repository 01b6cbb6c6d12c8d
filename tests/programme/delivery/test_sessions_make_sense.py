"""A group meets at most once a day for each kind of session, and the at-risk list
follows only people still on the course."""

from __future__ import annotations

import pytest

from programme.delivery.tables import ProgrammeSession
from referrals.tables import Referral

pytestmark = pytest.mark.anyio


@pytest.fixture
async def members(group, make_referrals, add_members):
    ids = await make_referrals(2)
    await add_members(group, ids)
    return ids


async def test_a_second_group_session_on_one_day_is_a_409_not_a_500(
    client, fran, group, add_session
):
    await add_session(group, 1, "2026-10-06")
    again = await client.post(
        f"/groups/{group}/sessions", json={"number": 2, "held_on": "2026-10-06"}, headers=fran
    )
    assert again.status_code == 409, again.text
    (problem,) = again.json()["errors"]
    assert (problem["code"], problem["field"]) == ("session_that_day", "held_on")
    assert "2026-10-06" in problem["message"]
    assert await ProgrammeSession.count() == 1


async def test_nineteen_sessions_on_one_day_cannot_complete_anyone(
    client, fran, group, add_session
):
    """The abuse the rule exists for: numbered sessions 1..19 all dated on one day."""
    await add_session(group, 1, "2026-10-06")
    codes = []
    for number in range(2, 20):
        response = await client.post(
            f"/groups/{group}/sessions",
            json={"number": number, "held_on": "2026-10-06"},
            headers=fran,
        )
        codes.append(response.status_code)
    assert set(codes) == {409}
    assert await ProgrammeSession.count() == 1


async def test_a_one_to_one_and_a_group_session_may_share_a_day(group, add_session):
    await add_session(group, 1, "2026-10-06")
    await add_session(group, 1, "2026-10-06", kind="one_to_one")
    assert await ProgrammeSession.count() == 2


async def test_two_one_to_ones_of_a_group_on_one_day_are_refused(client, fran, group, add_session):
    await add_session(group, 1, "2026-10-06", kind="one_to_one")
    again = await client.post(
        f"/groups/{group}/sessions",
        json={"number": 2, "held_on": "2026-10-06", "kind": "one_to_one"},
        headers=fran,
    )
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "session_that_day"


async def test_the_same_number_twice_is_still_its_own_conflict(client, fran, group, add_session):
    await add_session(group, 1, "2026-10-06")
    again = await client.post(
        f"/groups/{group}/sessions", json={"number": 1, "held_on": "2026-10-13"}, headers=fran
    )
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "duplicate"


@pytest.mark.parametrize("ending", ["disengaged", "withdrawn", "closed"])
async def test_an_ended_referral_drops_off_the_at_risk_list(
    client, fran, group, members, add_session, mark, ending
):
    a, b = members
    dates = ["2026-10-06", "2026-10-13", "2026-10-20"]
    for number, held_on in enumerate(dates, start=1):
        await mark(await add_session(group, number, held_on), {a: "absent", b: "absent"})
    listed = (await client.get("/programme/at-risk", headers=fran)).json()["items"]
    assert sorted(p["referral_id"] for p in listed) == sorted([a, b])
    ended = await client.post(
        f"/referrals/{a}/events", json={"type": ending, "on": "2026-10-21"}, headers=fran
    )
    assert ended.status_code == 201, ended.text
    listed = (await client.get("/programme/at-risk", headers=fran)).json()["items"]
    assert [p["referral_id"] for p in listed] == [b]


async def test_a_completed_referral_drops_off_the_at_risk_list(
    client, fran, group, members, add_session, mark
):
    a, b = members
    dates = ["2026-10-06", "2026-10-13", "2026-10-20"]
    for number, held_on in enumerate(dates, start=1):
        await mark(await add_session(group, number, held_on), {a: "absent", b: "absent"})
    # However it got there (the register, or a record kept elsewhere), a completed
    # referral has nobody left to chase.
    await Referral.update({Referral.status: "completed"}).where(Referral.id == a)
    listed = (await client.get("/programme/at-risk", headers=fran)).json()["items"]
    assert [p["referral_id"] for p in listed] == [b]
