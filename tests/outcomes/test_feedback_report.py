"""The victim feedback report: shares with Wilson intervals, small numbers suppressed."""

from __future__ import annotations

import pytest

from analysis.proportions import wilson
from programme.platform.tables import Role
from tests.builders import good_referral

pytestmark = pytest.mark.anyio


async def victims_with_feedback(client, sign_in, behaviours, collected_on, stage="exit", n=0):
    """Consenting victims (up to 10 to a referral), each giving one feedback."""
    referrer = await sign_in(Role.referrer, f"rita{n}")
    worker = await sign_in(Role.victim_worker, f"vic{n}")
    for chunk_start in range(0, len(behaviours), 10):
        chunk = behaviours[chunk_start : chunk_start + 10]
        person = n * 10 + chunk_start // 10
        victims = [
            {
                "first_name": f"V{i}",
                "relationship": "partner",
                "consent_to_contact": True,
                "consent_obtained_on": "2026-04-01",
            }
            for i in range(len(chunk))
        ]
        body = good_referral(
            victims=victims,
            first_name="P" + "abcdefghij"[person % 10] + "abcdefghij"[person // 10],
            phone=f"0114 496 0{person:03d}",
            received_on="2026-04-02",
            consent_obtained_on="2026-04-02",
        )
        referral = await client.post("/referrals", json=body, headers=referrer)
        assert referral.status_code == 201, referral.text
        listed = await client.get(f"/referrals/{referral.json()['id']}/victims", headers=worker)
        for victim, behaviour in zip(listed.json(), chunk, strict=True):
            response = await client.post(
                f"/victims/{victim['id']}/feedback",
                json={
                    "stage": stage,
                    "collected_on": collected_on,
                    "behaviour": behaviour,
                    "feels_safer": "yes",
                },
                headers=worker,
            )
            assert response.status_code == 201, response.text


async def test_shares_and_intervals_by_quarter_and_stage(client, sign_in):
    await victims_with_feedback(
        client,
        sign_in,
        ["stopped"] * 4 + ["reduced"] * 4 + ["same"] * 2 + ["worse"] * 3,
        "2026-05-10",
        n=1,
    )
    await victims_with_feedback(client, sign_in, ["stopped"] * 6, "2026-08-01", n=2)
    monitor = await sign_in(Role.monitor, "mo")
    report = (await client.get("/reports/victim-feedback", headers=monitor)).json()
    rows = {(r["quarter"], r["stage"]): r for r in report["rows"]}
    q1 = rows[("Q1 2026-27", "exit")]
    expected = wilson(8, 13)
    assert (q1["responded"], q1["stopped_or_reduced"]) == (13, 8)
    assert q1["share"] == pytest.approx(8 / 13)
    assert (q1["ci_low"], q1["ci_high"]) == pytest.approx((expected.ci_low, expected.ci_high))
    q2 = rows[("Q2 2026-27", "exit")]
    assert (q2["responded"], q2["stopped_or_reduced"], q2["share"]) == (6, 6, 1.0)
    assert report["total_responded"] == 19
    assert report["total_share"] == pytest.approx(14 / 19)


async def test_small_numbers_are_suppressed(client, sign_in):
    await victims_with_feedback(client, sign_in, ["stopped", "reduced", "same"], "2026-05-10", n=3)
    await victims_with_feedback(client, sign_in, ["stopped"] * 6 + ["same"] * 2, "2026-08-01", n=4)
    monitor = await sign_in(Role.monitor, "mo")
    report = (await client.get("/reports/victim-feedback", headers=monitor)).json()
    rows = {r["quarter"]: r for r in report["rows"]}
    small = rows["Q1 2026-27"]
    assert (small["responded"], small["stopped_or_reduced"]) == ("<5", "<5")
    assert small["share"] is None and small["ci_low"] is None
    # 8 and 6 would give Q1's 3 and 2 away from the totals (11 and 8): withheld too; and
    # 6 of 8 would reveal the 2 who said otherwise.
    revealing = rows["Q2 2026-27"]
    assert (revealing["responded"], revealing["stopped_or_reduced"]) == ("[c]", "[c]")
    assert (report["total_responded"], report["total_stopped_or_reduced"]) == (11, 8)
    assert revealing["share"] is None
    assert report["suppression_threshold"] == 5


async def test_a_quarter_range_filters_and_bad_labels_are_422(client, sign_in):
    await victims_with_feedback(client, sign_in, ["stopped"] * 5, "2026-05-10", n=5)
    await victims_with_feedback(client, sign_in, ["stopped"] * 5, "2026-08-01", n=6)
    monitor = await sign_in(Role.monitor, "mo")
    only_q2 = await client.get(
        "/reports/victim-feedback?from=Q2 2026-27&to=Q2 2026-27", headers=monitor
    )
    assert [r["quarter"] for r in only_q2.json()["rows"]] == ["Q2 2026-27"]
    bad = await client.get("/reports/victim-feedback?from=Q5 2026-27&to=last year", headers=monitor)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"from", "to"}


async def test_only_monitors_and_admins_read_the_report(client, sign_in):
    for role in (Role.referrer, Role.facilitator, Role.victim_worker):
        headers = await sign_in(role, f"{role.value}-r")
        assert (await client.get("/reports/victim-feedback", headers=headers)).status_code == 403
    admin = await sign_in(Role.admin, "alice")
    assert (await client.get("/reports/victim-feedback", headers=admin)).status_code == 200
