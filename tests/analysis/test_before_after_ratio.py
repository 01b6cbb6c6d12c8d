"""The before/after comparison states its direction: the incident rate ratio, exact CI."""

from __future__ import annotations

import dataclasses

import pytest
from scipy.stats import beta

from analysis.proportions import rate_ratio
from analysis.rules import AnalysisRequest
from analysis.services import _analyse, publish
from programme.platform.tables import Role
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort
from tests.analysis.test_reoffending_analysis import AS_OF as DB_AS_OF
from tests.analysis.test_reoffending_analysis import cohort as db_cohort  # noqa: F401 (fixture)
from tests.builders import inspire


def test_the_ratio_and_its_exact_interval_from_the_beta_quantiles():
    # Clopper-Pearson for p = after / (after + before), computed here from beta quantiles
    # independently of the code's binomtest, then p / (1 - p).
    result = rate_ratio(10, 30)
    assert result is not None
    low, high = beta.ppf(0.025, 10, 31), beta.ppf(0.975, 11, 30)
    assert result.ratio == pytest.approx(1 / 3)
    assert result.ci_low == pytest.approx(low / (1 - low), rel=1e-9)
    assert result.ci_high == pytest.approx(high / (1 - high), rel=1e-9)
    assert result.ci_high < 1  # clearly fewer after


def test_no_ratio_without_incidents_before_and_no_upper_bound_with_none_after_zero():
    assert rate_ratio(3, 0) is None
    none_after = rate_ratio(0, 12)
    assert none_after is not None and none_after.ratio == 0 and none_after.ci_low == 0


def test_the_ratio_is_withheld_when_a_count_behind_it_is_small():
    crude = dataclasses.replace(
        NO_BEFORE_AFTER,
        n=100,
        incidents_before=30,
        incidents_after=3,
        rate_ratio=0.1,
        rate_ratio_ci_low=0.02,
        rate_ratio_ci_high=0.3,
    )
    request = AnalysisRequest(horizon_days=364)
    result = publish(_analyse(cohort(100), 0, crude, request, AS_OF), 5)
    assert result.before_after.incidents_after == "<5"
    assert result.before_after.rate_ratio is None
    assert result.before_after.rate_ratio_ci_high is None
    shown = publish(_analyse(cohort(100), 0, crude, request, AS_OF), 2)
    assert shown.before_after.rate_ratio == 0.1


@pytest.mark.anyio
async def test_the_api_and_the_table_state_the_ratio(client, db_cohort, sign_in):  # noqa: F811
    monitor = await sign_in(Role.monitor, "mo")
    body = (
        await client.get("/analysis/reoffending", params={"as_of": DB_AS_OF}, headers=monitor)
    ).json()
    crude = body["before_after"]
    before = sum(1 for n in range(60) if n % 7 == 1)
    after = sum(1 for n in range(60) if n % 3 == 0)
    assert crude["rate_ratio"] == pytest.approx(after / before)
    assert crude["rate_ratio_ci_low"] < after / before < crude["rate_ratio_ci_high"]
    table = inspire("analyse", "reoffending", "--as-of", DB_AS_OF)
    assert f"ratio after/before {after / before:.2f}" in table.stdout
