"""Sessions moved or cancelled and places ended: nothing deleted, every change kept with
its reason, and the register's started and completed worked out again."""

from __future__ import annotations

import pytest

from programme.delivery.tables import Attendance, DeliveryChange, ProgrammeSession
from programme.platform.tables import AuditEvent, Role
from referrals.tables import Referral, ReferralEvent

pytestmark = pytest.mark.anyio


@pytest.fixture
async def members(group, make_referrals, add_members):
    ids = await make_referrals(2)
    await add_members(group, ids)
    return ids


async def status_of(referral_id):
    row = await Referral.select(Referral.status, Referral.status_on).where(
        Referral.id == referral_id
    ).first()  # fmt: skip
    return row["status"], str(row["status_on"])


async def move(client, headers, session_id, held_on, reason="Room double-booked"):
    return await client.patch(
        f"/sessions/{session_id}", json={"held_on": held_on, "reason": reason}, headers=headers
    )


async def cancel(client, headers, session_id, reason="Facilitator ill"):
    return await client.post(
        f"/sessions/{session_id}/cancel", json={"reason": reason}, headers=headers
    )


async def remove(client, headers, group_id, referral_id, **body):
    return await client.post(
        f"/groups/{group_id}/members/{referral_id}/remove",
        json={"reason": "Moved out of area"} | body, headers=headers,
    )  # fmt: skip


async def test_a_planned_session_moves_and_the_group_shows_why(client, fran, group, add_session):
    session_id = await add_session(group, 1, "2026-12-01")
    response = await move(client, fran, session_id, "2026-12-08")
    assert response.status_code == 200, response.text
    assert response.json()["held_on"] == "2026-12-08"
    detail = (await client.get(f"/groups/{group}", headers=fran)).json()
    assert detail["sessions"][0]["held_on"] == "2026-12-08"
    (change,) = detail["changes"]
    assert (change["kind"], change["old_on"], change["new_on"], change["by"]) == (
        "session_moved", "2026-12-01", "2026-12-08", "fran",
    )  # fmt: skip
    assert change["reason"] == "Room double-booked"


async def test_a_marked_session_moves_its_derived_start_with_it(
    client, fran, group, members, add_session, mark
):
    a = members[0]
    session_id = await add_session(group, 1, "2026-10-06")
    await mark(session_id, {a: "attended"})
    assert await status_of(a) == ("started", "2026-10-06")
    response = await move(client, fran, session_id, "2026-10-07")
    assert response.status_code == 200, response.text
    assert await status_of(a) == ("started", "2026-10-07")
    started = await ReferralEvent.select(ReferralEvent.occurred_on).where(
        (ReferralEvent.referral == a) & (ReferralEvent.type == "started")
    )
    assert [str(e["occurred_on"]) for e in started] == ["2026-10-07"]


async def test_a_marked_session_never_moves_into_the_future(
    client, fran, group, members, add_session, mark
):
    session_id = await add_session(group, 1, "2026-10-06")
    await mark(session_id, {members[0]: "attended"})
    response = await move(client, fran, session_id, "2027-01-05")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "marked_session_in_future"
    assert await DeliveryChange.count() == 0


async def test_a_session_does_not_move_before_its_group_or_before_someone_engaged(
    client, fran, group, members, add_session, mark
):
    session_id = await add_session(group, 1, "2026-10-06")
    early = await move(client, fran, session_id, "2026-05-01")
    assert early.status_code == 422
    assert early.json()["errors"][0]["field"] == "held_on"
    await mark(session_id, {members[0]: "attended"})
    before = await move(client, fran, session_id, "2026-09-01")  # engaged 2026-10-02
    assert before.status_code == 422
    assert before.json()["errors"][0]["code"] == "before_engagement"


async def test_cancelling_a_marked_session_undoes_the_start_and_keeps_the_marks(
    client, fran, group, members, add_session, mark
):
    a = members[0]
    session_id = await add_session(group, 1, "2026-10-06")
    await mark(session_id, {a: "attended"})
    assert (await status_of(a))[0] == "started"
    response = await cancel(client, fran, session_id)
    assert response.status_code == 200, response.text
    assert response.json()["cancelled"] is True
    assert await status_of(a) == ("engaged", "2026-10-02")
    assert await Attendance.count() == 1
    assert await ProgrammeSession.count() == 1
    register = (await client.get(f"/sessions/{session_id}/attendance", headers=fran)).json()
    assert register["cancelled"] is True and len(register["marks"]) == 1


async def test_cancelling_undoes_a_completion_that_needed_the_session(
    client, fran, sign_in, group, members, add_session, mark
):
    admin = await sign_in(Role.admin, "ada")
    settings = {"completion_min_sessions": 2, "weeks": 4, "exit_review_required": False}
    assert (
        await client.put("/programme/settings", json=settings, headers=admin)
    ).status_code == 200
    a = members[0]
    first = await add_session(group, 1, "2026-10-06")
    second = await add_session(group, 2, "2026-10-13")
    await mark(first, {a: "attended"})
    await mark(second, {a: "attended"})
    assert await status_of(a) == ("completed", "2026-10-13")
    assert (await cancel(client, fran, second)).status_code == 200
    assert await status_of(a) == ("started", "2026-10-06")


async def test_a_cancelled_session_is_neither_marked_nor_moved_nor_cancelled_again(
    client, fran, group, members, add_session, mark
):
    session_id = await add_session(group, 1, "2026-10-06")
    assert (await cancel(client, fran, session_id)).status_code == 200
    marked = await mark(session_id, {members[0]: "attended"})
    assert marked.status_code == 422
    assert "cancelled" in {e["code"] for e in marked.json()["errors"]}
    moved = await move(client, fran, session_id, "2026-10-07")
    assert moved.status_code == 409
    again = await cancel(client, fran, session_id)
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "already_cancelled"


async def test_absences_at_a_cancelled_session_do_not_count_towards_at_risk(
    client, fran, group, members, add_session, mark
):
    a = members[0]
    sessions = [
        await add_session(group, n, f"2026-10-{day:02d}") for n, day in ((1, 6), (2, 13), (3, 20))
    ]
    for session_id in sessions:
        await mark(session_id, {a: "absent"})
    at_risk = (await client.get("/programme/at-risk", headers=fran)).json()
    assert [p["referral_id"] for p in at_risk["items"]] == [a]
    await cancel(client, fran, sessions[1])
    assert (await client.get("/programme/at-risk", headers=fran)).json()["items"] == []


async def test_a_place_ends_with_a_reason_and_the_person_waits_again(client, fran, group, members):
    a = members[0]
    response = await remove(client, fran, group, a, on="2026-10-20")
    assert response.status_code == 200, response.text
    assert a not in [m["referral_id"] for m in response.json()["members"]]
    (change,) = response.json()["changes"]
    assert (change["kind"], change["referral_id"], change["new_on"]) == (
        "member_removed", a, "2026-10-20",
    )  # fmt: skip
    waiting = (await client.get("/programme/waiting-list", headers=fran)).json()
    assert a in [p["referral_id"] for p in waiting["people"]["items"]]
    assert await status_of(a) == ("engaged", "2026-10-02")
    again = await remove(client, fran, group, a)
    assert again.status_code == 404


async def test_a_place_does_not_end_before_a_marked_session_or_before_it_began(
    client, fran, group, members, add_session, mark
):
    a = members[0]
    await mark(await add_session(group, 1, "2026-10-13"), {a: "absent"})
    marked = await remove(client, fran, group, a, on="2026-10-06")
    assert marked.status_code == 422
    assert marked.json()["errors"][0]["code"] == "marked_after"
    early = await remove(client, fran, group, a, on="2026-09-01")
    assert early.json()["errors"][0]["code"] == "before_joining"
    future = await remove(client, fran, group, a, on="2027-01-01")
    assert future.json()["errors"][0]["code"] == "future_date"


async def test_a_reason_is_required(client, fran, group, members, add_session):
    session_id = await add_session(group, 1, "2026-12-01")
    for response in (
        await client.patch(f"/sessions/{session_id}", json={"held_on": "2026-12-08"}, headers=fran),
        await client.post(f"/sessions/{session_id}/cancel", json={}, headers=fran),
        await remove(client, fran, group, members[0], reason=""),
        await cancel(client, fran, session_id, reason="  "),
        await move(client, fran, session_id, "2026-12-08", reason="  "),
        await remove(client, fran, group, members[0], reason="  "),
    ):
        assert response.status_code in (400, 422), response.text
    assert await DeliveryChange.count() == 0


async def test_changes_are_audited(client, fran, group, add_session):
    session_id = await add_session(group, 1, "2026-12-01")
    await cancel(client, fran, session_id)
    rows = await AuditEvent.select(AuditEvent.detail).where(
        (AuditEvent.record_id == group) & (AuditEvent.action == "update")
    )
    assert any("session_cancelled" in str(r["detail"]) for r in rows)
    assert "ill" not in str(rows)


@pytest.mark.parametrize("role", [Role.referrer, Role.monitor, Role.victim_worker])
async def test_only_staff_change_sessions_and_places(
    client, sign_in, group, members, add_session, role
):
    session_id = await add_session(group, 1, "2026-12-01")
    headers = await sign_in(role, f"someone-{role.value}")
    assert (await move(client, headers, session_id, "2026-12-08")).status_code == 403
    assert (await cancel(client, headers, session_id)).status_code == 403
    assert (await remove(client, headers, group, members[0])).status_code == 403


async def test_a_facilitator_of_another_group_may_not_and_an_admin_may(
    client, sign_in, group, members, add_session
):
    session_id = await add_session(group, 1, "2026-12-01")
    other = await sign_in(Role.facilitator, "felix")
    assert (await move(client, other, session_id, "2026-12-08")).status_code == 403
    assert (await cancel(client, other, session_id)).status_code == 403
    assert (await remove(client, other, group, members[0])).status_code == 403
    admin = await sign_in(Role.admin, "ada")
    assert (await move(client, admin, session_id, "2026-12-08")).status_code == 200
    assert (await cancel(client, admin, session_id)).status_code == 200
    assert (await remove(client, admin, group, members[0])).status_code == 200


async def test_a_started_step_from_the_register_is_not_voided(
    client, fran, group, members, add_session, mark
):
    a = members[0]
    await mark(await add_session(group, 1, "2026-10-06"), {a: "attended"})
    record = (await client.get(f"/referrals/{a}", headers=fran)).json()
    started = record["timeline"][-1]
    assert started["type"] == "started"
    response = await client.post(
        f"/referrals/{a}/events/{started['id']}/void", json={"reason": "x"}, headers=fran
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "derived_from_register"
