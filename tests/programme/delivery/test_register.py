"""The register: idempotent saves, audited corrections, simultaneous saves, and the
started/completed milestones and at-risk alerts derived from it."""

from __future__ import annotations

import asyncio

import pytest

from programme.delivery.tables import Attendance
from programme.platform.tables import AuditEvent, Role
from referrals.tables import ParticipantAlert, Referral, ReferralEvent

pytestmark = pytest.mark.anyio


@pytest.fixture
async def members(group, make_referrals, add_members):
    ids = await make_referrals(3)
    await add_members(group, ids)
    return ids


async def status_of(referral_id):
    row = await Referral.select(Referral.status, Referral.status_on).where(
        Referral.id == referral_id
    ).first()  # fmt: skip
    return row["status"], str(row["status_on"])


@pytest.mark.smoke
async def test_a_saved_register_is_read_back(client, fran, group, members, add_session, mark):
    session_id = await add_session(group, 1, "2026-10-06")
    a, b, c = members
    response = await mark(session_id, {a: "attended", b: "late", c: "excused"})
    assert response.status_code == 200, response.text
    read = (await client.get(f"/sessions/{session_id}/attendance", headers=fran)).json()
    assert {(m["referral_id"], m["status"], m["marked_by"]) for m in read["marks"]} == {
        (a, "attended", "fran"), (b, "late", "fran"), (c, "excused", "fran"),
    }  # fmt: skip


async def test_saving_the_same_register_twice_changes_nothing(group, members, add_session, mark):
    session_id = await add_session(group, 1, "2026-10-06")
    register = {members[0]: "attended", members[1]: "absent"}
    await mark(session_id, register)
    rows_before = await Attendance.select().order_by(Attendance.referral)
    audit_before = await AuditEvent.count()
    again = await mark(session_id, register)
    assert again.status_code == 200
    assert await Attendance.select().order_by(Attendance.referral) == rows_before
    assert await AuditEvent.count() == audit_before


async def test_a_correction_replaces_the_mark_and_is_audited(
    client, group, members, add_session, mark, sign_in
):
    session_id = await add_session(group, 1, "2026-10-06")
    await mark(session_id, {members[0]: "absent"})
    admin = await sign_in(Role.admin, "alice")
    # An admin corrects it (admins may work with any group).
    corrected = await mark(session_id, {members[0]: "excused"}, headers=admin)
    assert corrected.status_code == 200
    assert [m["status"] for m in corrected.json()["marks"]] == ["excused"]
    assert await Attendance.count() == 1
    rows = await AuditEvent.select().where(
        (AuditEvent.record_type == "attendance") & (AuditEvent.action == "update")
    ).output(load_json=True)  # fmt: skip
    assert len(rows) == 1
    assert rows[0]["username"] == "alice"
    assert rows[0]["detail"] == {"session": session_id, "mark": "excused", "was": "absent"}
    assert rows[0]["occurred_at"] is not None


async def test_a_bad_register_lists_every_problem(client, fran, group, members, add_session, mark,
                                                  make_referrals):  # fmt: skip
    outsider = (await make_referrals(1, start=50))[0]
    future = await add_session(group, 2, "2027-01-05")
    response = await mark(future, {members[0]: "attended", outsider: "attended"})
    assert response.status_code == 422
    fields = {(e["code"], e["field"]) for e in response.json()["errors"]}
    assert fields == {("future_session", "session"), ("not_a_member", "[1].referral_id")}
    session_id = await add_session(group, 1, "2026-10-06")
    unknown = await client.put(
        f"/sessions/{session_id}/attendance",
        json=[{"referral_id": members[0], "status": "asleep"},
              {"referral_id": "not-a-uuid", "status": "attended"}],
        headers=fran,
    )  # fmt: skip
    assert unknown.status_code == 422
    assert {e["field"] for e in unknown.json()["errors"]} == {"[0].status", "[1].referral_id"}
    assert await Attendance.count() == 0


async def test_two_facilitators_saving_one_register_at_once_lose_nothing(
    group, members, add_session, mark, sign_in
):
    admin = await sign_in(Role.admin, "alice")
    session_id = await add_session(group, 1, "2026-10-06")
    a, b, c = members
    first, second = await asyncio.gather(
        mark(session_id, {a: "attended", b: "attended"}),
        mark(session_id, {b: "attended", c: "late"}, headers=admin),
    )
    assert first.status_code == second.status_code == 200
    rows = await Attendance.select(Attendance.referral, Attendance.status)
    assert sorted((str(r["referral"]), r["status"]) for r in rows) == sorted(
        [(a, "attended"), (b, "attended"), (c, "late")]
    )
    started = await ReferralEvent.count().where(ReferralEvent.type == "started")
    assert started == 3


async def test_two_sessions_saved_at_once_for_the_same_people_do_not_deadlock(
    group, members, add_session, mark, sign_in
):
    admin = await sign_in(Role.admin, "alice")
    for round_ in range(3):
        first = await add_session(group, 2 * round_ + 1, f"2026-10-{6 + 7 * round_:02d}")
        second = await add_session(
            group, 2 * round_ + 1, f"2026-10-{7 + 7 * round_:02d}", kind="one_to_one"
        )
        register = dict.fromkeys(members, "attended")
        results = await asyncio.gather(mark(first, register), mark(second, register, headers=admin))
        assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
    assert await Attendance.count() == 18


async def test_the_first_attendance_starts_the_referral_on_that_date(
    group, members, add_session, mark
):
    first = await add_session(group, 1, "2026-10-06")
    second = await add_session(group, 2, "2026-10-13")
    a = members[0]
    await mark(first, {a: "absent"})
    assert await status_of(a) == ("engaged", "2026-10-02")
    await mark(second, {a: "late"})
    assert await status_of(a) == ("started", "2026-10-13")
    # Correcting the earlier session moves the start back to it.
    await mark(first, {a: "attended"})
    assert await status_of(a) == ("started", "2026-10-06")
    events = await ReferralEvent.select(ReferralEvent.occurred_on, ReferralEvent.source).where(
        (ReferralEvent.referral == a) & (ReferralEvent.type == "started")
    )  # fmt: skip
    assert [(str(e["occurred_on"]), e["source"]) for e in events] == [("2026-10-06", "register")]


async def test_a_correction_that_removes_every_attendance_undoes_the_start(
    group, members, add_session, mark
):
    session_id = await add_session(group, 1, "2026-10-06")
    a = members[0]
    await mark(session_id, {a: "attended"})
    assert (await status_of(a))[0] == "started"
    await mark(session_id, {a: "absent"})
    assert await status_of(a) == ("engaged", "2026-10-02")
    assert await ReferralEvent.count().where(ReferralEvent.type == "started") == 0


@pytest.fixture
async def short_course(client, sign_in):
    """A three-session completion rule, so a test can meet it in weeks, not months."""
    admin = await sign_in(Role.admin, "alice")
    response = await client.put(
        "/programme/settings", json={"completion_min_sessions": 3, "weeks": 4}, headers=admin
    )
    assert response.status_code == 200
    return admin


async def test_completion_needs_the_sessions_and_the_exit_review(
    client, fran, short_course, group, members, add_session, mark
):
    a = members[0]
    for number, held_on in enumerate(["2026-10-06", "2026-10-13", "2026-10-20"], start=1):
        await mark(await add_session(group, number, held_on), {a: "attended"})
    assert (await status_of(a))[0] == "started"
    review = await client.post(
        "/programme/exit-reviews", json={"referral_id": a, "held_on": "2026-10-27"}, headers=fran
    )
    assert review.status_code == 201, review.text
    assert review.json()["status"] == "completed"
    assert await status_of(a) == ("completed", "2026-10-27")
    twice = await client.post(
        "/programme/exit-reviews", json={"referral_id": a, "held_on": "2026-10-28"}, headers=fran
    )
    assert twice.status_code == 409


async def test_completion_is_dated_on_the_session_that_met_the_rule(
    client, fran, short_course, group, members, add_session, mark
):
    a = members[0]
    s1 = await add_session(group, 1, "2026-10-06")
    await mark(s1, {a: "attended"})
    await client.post(
        "/programme/exit-reviews", json={"referral_id": a, "held_on": "2026-10-07"}, headers=fran
    )
    await mark(await add_session(group, 2, "2026-10-13"), {a: "absent"})
    await mark(await add_session(group, 3, "2026-10-20"), {a: "attended"})
    assert (await status_of(a))[0] == "started"
    await mark(await add_session(group, 4, "2026-10-27"), {a: "late"})
    assert await status_of(a) == ("completed", "2026-10-27")


async def test_sessions_after_the_programme_length_do_not_count(
    client, fran, short_course, group, members, add_session, mark
):
    a = members[0]
    await client.post(
        "/programme/exit-reviews", json={"referral_id": a, "held_on": "2026-10-07"}, headers=fran
    )  # refused: not started yet
    dates = ["2026-10-06", "2026-10-13", "2026-11-10"]  # the third is past 4 weeks
    for number, held_on in enumerate(dates, start=1):
        await mark(await add_session(group, number, held_on), {a: "attended"})
    await client.post(
        "/programme/exit-reviews", json={"referral_id": a, "held_on": "2026-11-11"}, headers=fran
    )
    assert (await status_of(a))[0] == "started"


async def test_one_to_ones_start_a_referral_but_do_not_count_towards_completion(
    client, fran, short_course, group, members, add_session, mark
):
    a = members[0]
    await mark(await add_session(group, 1, "2026-10-05", kind="one_to_one"), {a: "attended"})
    assert await status_of(a) == ("started", "2026-10-05")
    for number, held_on in enumerate(["2026-10-06", "2026-10-13"], start=1):
        await mark(await add_session(group, number, held_on), {a: "attended"})
    await client.post(
        "/programme/exit-reviews", json={"referral_id": a, "held_on": "2026-10-20"}, headers=fran
    )
    assert (await status_of(a))[0] == "started"


async def test_a_correction_undoes_a_completion(
    client, fran, short_course, group, members, add_session, mark
):
    a = members[0]
    sessions = []
    for number, held_on in enumerate(["2026-10-06", "2026-10-13", "2026-10-20"], start=1):
        sessions.append(await add_session(group, number, held_on))
        await mark(sessions[-1], {a: "attended"})
    await client.post(
        "/programme/exit-reviews", json={"referral_id": a, "held_on": "2026-10-20"}, headers=fran
    )
    assert await status_of(a) == ("completed", "2026-10-20")
    await mark(sessions[1], {a: "absent"})
    assert await status_of(a) == ("started", "2026-10-06")
    assert await ReferralEvent.count().where(ReferralEvent.type == "completed") == 0


async def test_three_unexcused_absences_in_a_row_put_someone_at_risk(
    client, fran, group, members, add_session, mark, sign_in
):
    a, b, _ = members
    dates = ["2026-10-06", "2026-10-13", "2026-10-20", "2026-10-27"]
    sessions = [await add_session(group, n, d) for n, d in enumerate(dates, start=1)]
    await mark(sessions[0], {a: "attended", b: "absent"})
    await mark(sessions[1], {a: "absent", b: "excused"})
    await mark(sessions[2], {a: "absent", b: "absent"})
    assert (await client.get("/programme/at-risk", headers=fran)).json()["items"] == []
    await mark(sessions[3], {a: "absent", b: "absent"})
    at_risk = (await client.get("/programme/at-risk", headers=fran)).json()["items"]
    assert [(p["referral_id"], p["consecutive_absences"]) for p in at_risk] == [(a, 3)]
    assert at_risk[0]["group"] == "Rotherham Tuesday"
    alerts = await ParticipantAlert.select(ParticipantAlert.referral, ParticipantAlert.kind)
    assert [(str(x["referral"]), x["kind"]) for x in alerts] == [(a, "at_risk")]
    # Saving the same register again raises no second alert.
    await mark(sessions[3], {a: "absent", b: "absent"})
    assert await ParticipantAlert.count() == 1
    # The list is scoped to the facilitator's own groups.
    other = await sign_in(Role.facilitator, "frank")
    assert (await client.get("/programme/at-risk", headers=other)).json()["items"] == []
    # The person stays on their course: disengagement is a facilitator's decision.
    assert (await status_of(a))[0] == "started"


async def test_disengagement_is_raised_for_partner_support(client, fran, members):
    response = await client.post(
        f"/referrals/{members[0]}/events", json={"type": "disengaged", "on": "2026-10-20"},
        headers=fran,
    )  # fmt: skip
    assert response.status_code == 201
    alerts = await ParticipantAlert.select(ParticipantAlert.referral, ParticipantAlert.kind)
    assert [(str(x["referral"]), x["kind"]) for x in alerts] == [(members[0], "disengaged")]


async def test_no_marks_for_someone_whose_consent_was_withdrawn(
    client, fran, group, members, add_session, mark
):
    await client.post(
        f"/referrals/{members[0]}/events", json={"type": "withdrawn", "on": "2026-10-03"},
        headers=fran,
    )  # fmt: skip
    response = await mark(await add_session(group, 1, "2026-10-06"), {members[0]: "attended"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "withdrawn"
