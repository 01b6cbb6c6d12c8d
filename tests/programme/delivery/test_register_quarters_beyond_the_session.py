"""A register save checks the reported quarters in the statements it makes anyway: the
session's quarter is shared with the marks' write, the quarters of the milestones it
moves elsewhere with the milestones' write. A milestone moved out of a locked quarter
by a session in an open one is refused like any other change to reported figures."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role
from referrals.tables import ReferralEvent

pytestmark = pytest.mark.anyio

REPORTED = "Q2 2026-27"


async def started_on(referral_id):
    rows = await ReferralEvent.select(ReferralEvent.occurred_on).where(
        (ReferralEvent.referral == referral_id) & (ReferralEvent.type == "started")
    )
    return [str(row["occurred_on"]) for row in rows]


async def test_an_earlier_session_that_moves_a_start_out_of_a_locked_quarter_needs_a_reason(
    client, fran, group, make_referrals, add_members, add_session, mark, sign_in
):
    alice = await sign_in(Role.admin, "alice")
    (a,) = await make_referrals(1, received_on="2026-05-01", moved_on="2026-05-02")
    await add_members(group, [a])
    june = await add_session(group, 1, "2026-06-02")  # Q1 2026-27, left open
    july = await add_session(group, 2, "2026-07-07")  # Q2 2026-27, reported below
    assert (await mark(july, {a: "attended"})).status_code == 200
    assert await started_on(a) == ["2026-07-07"]
    locked = await client.put(f"/reports/locked-quarters/{REPORTED}", headers=alice)
    assert locked.status_code == 200, locked.text

    # Attending in June moves the start from July (reported) to June (open).
    refused = await mark(june, {a: "attended"})
    assert refused.status_code == 409, refused.text
    error = refused.json()["errors"][0]
    assert error["code"] == "quarter_locked"
    assert REPORTED in error["message"]
    assert await started_on(a) == ["2026-07-07"]

    overridden = await client.put(
        f"/sessions/{june}/attendance",
        params={"override_reason": "June's register was filed late."},
        json=[{"referral_id": a, "status": "attended"}],
        headers=alice,
    )
    assert overridden.status_code == 200, overridden.text
    assert await started_on(a) == ["2026-06-02"]
    report = await client.get(
        "/reports/quarterly", params={"from": REPORTED, "to": REPORTED}, headers=alice
    )
    assert report.json()["rows"][0]["reported"] == "revised since reported"


async def test_a_save_in_an_open_quarter_that_moves_nothing_reported_needs_no_reason(
    client, fran, group, make_referrals, add_members, add_session, mark, sign_in
):
    alice = await sign_in(Role.admin, "alice")
    (a,) = await make_referrals(1, received_on="2026-05-01", moved_on="2026-05-02")
    await add_members(group, [a])
    june = await add_session(group, 1, "2026-06-02")
    july = await add_session(group, 2, "2026-07-07")
    assert (await mark(june, {a: "attended"})).status_code == 200
    locked = await client.put(f"/reports/locked-quarters/{REPORTED}", headers=alice)
    assert locked.status_code == 200, locked.text
    # The start stays in June; July's own mark is in the reported quarter, so it is
    # refused, but a correction in June that keeps the start where it is goes through.
    assert (await mark(july, {a: "attended"})).status_code == 409
    assert (await mark(june, {a: "late"})).status_code == 200
    assert await started_on(a) == ["2026-06-02"]
