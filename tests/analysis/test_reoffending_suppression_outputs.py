"""Suppression reaches the API, the CLI table and the plot, from INSPIRE_SUPPRESS_BELOW."""

from __future__ import annotations

import os

import pytest

from programme.platform.tables import Role
from tests.analysis.test_reoffending_analysis import cohort  # noqa: F401 (fixture)
from tests.builders import inspire

pytestmark = pytest.mark.anyio

EARLY = "2025-02-01"
"""26 referrals with follow-up, a handful of reoffences: small counts on every side."""


def counts(value):
    """Every count in a body: the values of n, events, count and the like, wherever they are."""
    names = {"n", "events", "count", "excluded", "dropped_missing", "any_before", "any_after"}
    if isinstance(value, dict):
        for key, item in value.items():
            if key in names and not isinstance(item, dict | list):
                yield item
            else:
                yield from counts(item)
    elif isinstance(value, list):
        for item in value:
            yield from counts(item)


async def test_the_api_publishes_no_small_count(client, cohort, sign_in):  # noqa: F811
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending", params={"as_of": EARLY, "group_by": "engaged"}, headers=monitor
    )
    assert response.status_code == 200, response.text
    body = response.json()
    found = list(counts(body))
    assert "<5" in found
    assert all(c == "<5" or c == 0 or c >= 5 for c in found), found
    for group in body["groups"]:
        if group["events"] == "<5" or group["n"] == "<5":
            assert group["survival"] is None
    assert body["suppression_threshold"] == 5


async def test_the_cli_table_uses_the_setting(cohort):  # noqa: F811
    args = ("analyse", "reoffending", "--as-of", EARLY, "--group-by", "engaged")
    hidden = inspire(*args)
    assert hidden.returncode == 0, hidden.stderr
    assert "<5" in hidden.stdout and "estimates withheld" in hidden.stdout
    shown = inspire(*args, env={**os.environ, "INSPIRE_SUPPRESS_BELOW": "1"})
    assert shown.returncode == 0, shown.stderr
    assert "<5" not in shown.stdout and "estimates withheld" not in shown.stdout


async def test_the_plot_route_suppresses_numbers_at_risk(client, cohort, sign_in):  # noqa: F811
    monitor = await sign_in(Role.monitor, "mo")
    svg = await client.get(
        "/analysis/reoffending/plot.svg",
        params={"as_of": EARLY, "group_by": "engaged", "horizon_days": 28},
        headers=monitor,
    )
    assert svg.status_code == 200, svg.text
    assert b"&lt;5" in svg.content  # at risk at day 21: those received by 11 January
    assert b"withheld" in svg.content  # one reoffence in all: neither curve is drawn
