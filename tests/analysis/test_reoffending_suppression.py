"""No reoffending output publishes a count from 1 to INSPIRE_SUPPRESS_BELOW - 1."""

from __future__ import annotations

import dataclasses

import numpy as np

from analysis.plots import _draw
from analysis.rules import AnalysisRequest
from analysis.services import _analyse, publish
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort


def small_groups():
    """100 referrals: 3 at high risk; 40 at medium risk of whom 2 reoffend."""
    raw = cohort(100, seed=4)
    raw["risk_level"] = ["high"] * 3 + ["medium"] * 40 + ["standard"] * 57
    raw.loc[3:42, "days_to_reoffence"] = np.nan
    raw.loc[3:4, "days_to_reoffence"] = [30.0, 60.0]
    return raw


def analysed(raw, threshold, **options):
    request = AnalysisRequest(**{"horizon_days": 364, **options})
    crude = dataclasses.replace(NO_BEFORE_AFTER, n=100, any_before=3, incidents_before=7)
    return publish(_analyse(raw, 2, crude, request, AS_OF), threshold)


def test_small_counts_and_the_estimates_that_reveal_them_are_withheld():
    result = analysed(small_groups(), 5, group_by="risk_level")
    groups = {g.group: g for g in result.groups}
    assert (groups["high"].n, groups["medium"].n, groups["standard"].n) == ("<5", 40, 57)
    assert groups["medium"].events == "<5"
    for small in (groups["high"], groups["medium"]):
        # 1 - k/n for a group of 40 with k < 5, or any estimate of a group of 3, gives k away.
        assert (small.survival, small.ci_low, small.ci_high, small.rmst) == (None,) * 4
    standard = groups["standard"]
    assert isinstance(standard.events, int) and standard.events >= 5
    assert standard.survival is not None and standard.rmst is not None
    assert result.excluded == "<5"
    assert not any("2 referrals" in note for note in result.notes)  # nor in words
    assert result.population.dropped[0].count == "<5"
    crude = result.before_after
    assert (crude.n, crude.any_before, crude.incidents_before, crude.any_after) == (
        100,
        "<5",
        7,
        0,
    )
    assert result.suppression_threshold == 5
    assert any("'<5'" in note for note in result.notes)


def test_the_threshold_is_the_setting_not_a_constant():
    result = analysed(small_groups(), 2, group_by="risk_level")
    groups = {g.group: g for g in result.groups}
    assert (groups["high"].n, groups["medium"].events, result.excluded) == (3, 2, 2)
    assert groups["medium"].survival is not None


def test_landmark_and_model_populations_are_suppressed_too():
    raw = cohort(200, seed=2, shortest_follow_up=60)
    raw["days_to_engaged"] = 20.0
    raw.loc[:2, ["days_to_engaged", "days_to_reoffence", "days_available"]] = [np.nan, np.nan, 400]
    result = analysed(raw, 5, group_by="engaged", landmark_days=100)
    landmark = result.time_varying.landmark
    groups = {g.group: g for g in landmark.groups}
    assert groups["not engaged"].n == "<5" and groups["not engaged"].survival is None
    counts = [
        result.n,
        result.events,
        result.cox.n,
        result.cox.events,
        landmark.n,
        *(d.count for p in (result.cox.population, landmark.population) for d in p.dropped),
    ]
    assert all(c == "<5" or c == 0 or c >= 5 for c in counts)


def test_the_plot_shows_no_small_number_at_risk_and_no_curve_for_a_small_group():
    request = AnalysisRequest(horizon_days=364, group_by="risk_level")
    svg = _draw(small_groups(), request, AS_OF, "svg", 5).decode()
    assert "Still followed" in svg and "At risk" not in svg
    assert "high (n=&lt;5): withheld" in svg
    assert "&lt;5" in svg.replace("high (n=&lt;5): withheld", "")  # a number at risk
    assert "high (n=3)" not in svg
