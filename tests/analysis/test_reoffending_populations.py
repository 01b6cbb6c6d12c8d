"""Every model says whom it is on; naive and corrected comparisons are on the same people."""

from __future__ import annotations

import numpy as np

from analysis.rules import AnalysisRequest
from analysis.services import _analyse, follow_up
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort


def run(raw, **options):
    request = AnalysisRequest(**{"horizon_days": 364, **options})
    return _analyse(raw, 3, NO_BEFORE_AFTER, request, AS_OF)


def test_each_model_reports_its_own_population_and_who_was_left_out():
    raw = cohort(300, missing_risk=0.4, shortest_follow_up=60)
    missing = int(raw["risk_level"].isna().sum())
    frame = follow_up(raw, 364)
    result = run(raw, group_by="engaged", covariates=("risk_level",), landmark_days=120)

    everyone = result.population
    assert (everyone.n, everyone.events) == (300, int(frame["event"].sum()))
    assert [(d.reason, d.count) for d in everyone.dropped] == [
        ("received on or after the data cut-off: no follow-up yet", 3)
    ]

    complete = frame[raw["risk_level"].notna()]
    cox = result.cox.population
    assert (cox.n, cox.events) == (300 - missing, int(complete["event"].sum()))
    assert [(d.reason, d.count) for d in cox.dropped] == [
        ("missing a covariate (risk_level)", missing)
    ]
    # The naive and the corrected Cox models are on the very same people, and say so.
    corrected = result.time_varying.population
    assert (corrected.n, corrected.events, corrected.dropped) == (cox.n, cox.events, cox.dropped)
    assert "same people" in cox.description and "same people" in corrected.description


def test_the_landmark_analysis_drops_no_one_for_covariates_it_does_not_use():
    raw = cohort(300, missing_risk=0.4, shortest_follow_up=60)
    frame = follow_up(raw, 364)
    with_covariates = run(raw, group_by="engaged", covariates=("risk_level",), landmark_days=120)
    without = run(raw, group_by="engaged", landmark_days=120)
    landmark, plain = with_covariates.time_varying.landmark, without.time_varying.landmark
    followed = frame[frame["duration"] > 120]
    assert landmark.population.n == landmark.n == len(followed) == plain.n
    assert landmark.logrank == plain.logrank
    gone = frame[frame["duration"] <= 120]
    reasons = {d.reason: d.count for d in landmark.population.dropped}
    assert reasons == {
        "reoffended by day 120": int(gone["event"].sum()),
        "follow-up ended by day 120 (not followed to the landmark)": int(
            (gone["event"] == 0).sum()
        ),
    }
    assert landmark.population.n + sum(reasons.values()) == 300
    assert landmark.population.events == int(followed["event"].sum())
    assert "'groups' and 'logrank'" in landmark.population.description


def test_a_model_not_fitted_reports_no_population():
    raw = cohort(60, engaged_share=0.5)
    raw["days_to_reoffence"] = np.nan  # nobody reoffends: no model can be fitted
    raw.loc[0, "days_to_reoffence"] = 30.0
    result = run(raw, group_by="engaged", landmark_days=120)
    assert result.time_varying.covariates == []
    assert result.time_varying.population is None
    assert result.population.events == 1
