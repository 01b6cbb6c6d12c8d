"""``inspire demo``: every report and plot has something to show, and real data is safe."""

from __future__ import annotations

import subprocess

import pytest

from programme.platform.tables import Role
from referrals.tables import Referral
from tests.builders import good_referral, inspire

pytestmark = pytest.mark.anyio


def demo(*args: str) -> subprocess.CompletedProcess:
    return inspire("demo", *args)


async def test_the_demo_fills_every_report(client, clean_database, sign_in):
    result = demo("--referrals", "300")
    assert result.returncode == 0, result.stderr
    assert "account demo-monitor password" in result.stdout
    monitor = await sign_in(Role.monitor, "mo")
    quarterly = (
        await client.get("/reports/quarterly?from=Q1 2022-23&to=Q2 2026-27", headers=monitor)
    ).json()
    total = quarterly["rows"][-1]
    assert (
        min(
            total[c]
            for c in ("referrals", "returned", "contacted", "engaging", "started", "completed")
        )
        > 0
    )
    quality = (
        await client.get("/reports/referral-quality?from=Q1 2022-23&to=Q2 2026-27", headers=monitor)
    ).json()
    assert len({row["agency"] for row in quality["rows"]}) >= 5
    feedback = (await client.get("/reports/victim-feedback", headers=monitor)).json()
    assert feedback["rows"]
    analysis = await client.get(
        "/analysis/reoffending?group_by=engaged&covariates=age_at_referral,risk_level,prior_incidents,substance_misuse",
        headers=monitor,
    )
    assert analysis.status_code == 200, analysis.text
    assert analysis.json()["events"] > 0 and analysis.json()["time_varying"]["covariates"]
    plot = await client.get("/analysis/reoffending/plot.png?group_by=risk_level", headers=monitor)
    assert plot.content.startswith(b"\x89PNG")
    waiting = (await client.get("/programme/waiting-list", headers=monitor)).json()
    assert waiting["count"] >= 0
    fran = await sign_in(Role.facilitator, "fran")
    assert (await client.get("/groups", headers=fran)).json()["items"] == []  # not fran's


async def test_the_demo_never_touches_a_database_with_real_records(client, clean_database, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    await client.post("/referrals", json=good_referral(), headers=referrer)
    refused = demo("--referrals", "60")
    assert refused.returncode == 1
    assert "never mixes with real records" in refused.stderr
    assert await Referral.count() == 1


def test_the_same_seed_makes_the_same_people():
    import random

    from programme.demo import _referral_rows

    first, _ = _referral_rows(random.Random(7), 100)
    again, _ = _referral_rows(random.Random(7), 100)
    other, _ = _referral_rows(random.Random(8), 100)
    assert first == again
    assert first != other
