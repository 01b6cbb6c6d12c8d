"""The adjusted comparison on simulated cohorts whose truth is known.

Selection into engagement depends on risk level and prior incidents, which also raise
reoffending. Everyone who engages does so by day 80, before the 91-day landmark, and
from that day their hazard is multiplied by the true effect. With no effect, comparing
who engaged with who did not (naive, or at the landmark unweighted) shows one anyway;
weighting for the two covariates removes it.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from analysis.rules import AnalysisRequest
from analysis.services import _analyse
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER

N = 4000


def selected_cohort(effect: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    high = rng.random(N) < 0.4
    prior = rng.poisson(1.5, N)
    # High risk and more prior incidents: more reoffending, and less engaging.
    hazard = np.exp(np.log(1 / 500) + np.log(2.5) * high + 0.25 * prior)
    engages = rng.random(N) < 1 / (1 + np.exp(-(0.8 - 1.8 * high - 0.35 * prior)))
    engaged_on = np.where(engages, rng.integers(10, 81, N), np.nan).astype(float)
    untreated = rng.exponential(1 / hazard)
    # From the day of engaging, the hazard is ``effect`` times what it was: the time
    # still to go is stretched by 1 / effect (constant hazards, so memoryless).
    after = engages & (untreated > engaged_on)
    reoffence = np.where(after, engaged_on + (untreated - engaged_on) / effect, untreated)
    reoffence = np.ceil(reoffence)
    available = np.full(N, 400)
    born = [date(1980, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 7000, N)]
    return pd.DataFrame(
        {
            "person": [f"person-{i}" for i in range(N)],
            "received_on": [AS_OF - timedelta(days=400)] * N,
            "date_of_birth": born,
            "gender": rng.choice(["male", "female"], N, p=[0.85, 0.15]),
            "risk_level": np.where(high, "high", "standard").astype(object),
            "prior_incidents": prior,
            "substance_misuse": rng.random(N) < 0.3,
            "mental_health": rng.random(N) < 0.3,
            "children_in_household": rng.random(N) < 0.5,
            "local_authority": "Sheffield",
            "agency": "South Yorkshire Police",
            "days_available": available,
            "days_to_engaged": engaged_on,
            "days_to_completed": np.full(N, np.nan),
            "days_to_reoffence": np.where(reoffence <= available, reoffence, np.nan),
        }
    )


def analyse(raw: pd.DataFrame):
    request = AnalysisRequest(horizon_days=364, group_by="engaged", covariates=())
    return _analyse(raw, 0, NO_BEFORE_AFTER, request, AS_OF)


def covers(term, truth: float) -> bool:
    return term.ci_low <= truth <= term.ci_high


def test_with_no_effect_the_naive_comparisons_show_one_and_the_adjusted_does_not():
    result = analyse(selected_cohort(effect=1.0, seed=20261127))
    adjusted = result.adjusted
    assert adjusted is not None
    # Self-selection alone: the unweighted comparison at the landmark "finds" a
    # programme effect, its interval well clear of the truth (1)...
    unweighted = adjusted.unadjusted_hazard_ratio
    assert unweighted.hazard_ratio < 0.75 and unweighted.ci_high < 1
    # ...as does the immortal-time corrected model, which corrects only immortal time.
    time_varying = next(t for t in result.time_varying.covariates if t.name == "engaged")
    assert time_varying.ci_high < 1
    # Weighted for the covariates that drive selection, the interval covers the truth.
    assert covers(adjusted.hazard_ratio, 1.0), adjusted.hazard_ratio
    assert abs(np.log(adjusted.hazard_ratio.hazard_ratio)) < abs(np.log(unweighted.hazard_ratio))
    # The groups differed on risk before weighting, and not after.
    before = {b.covariate: b for b in adjusted.balance}
    assert before["risk_level=high"].imbalanced_before
    assert before["prior_incidents"].imbalanced_before
    assert all(abs(b.smd_after) < 0.1 for b in adjusted.balance), [
        (b.covariate, b.smd_after) for b in adjusted.balance if abs(b.smd_after) >= 0.1
    ]
    assert not any(b.imbalanced_after for b in adjusted.balance)
    # An interval covering 1 can be explained away by no confounding at all.
    assert adjusted.e_value.ci_limit == 1.0
    assert adjusted.population.n == result.time_varying.landmark.n


def test_a_true_effect_is_recovered_within_the_interval():
    result = analyse(selected_cohort(effect=0.6, seed=7))
    adjusted = result.adjusted
    assert covers(adjusted.hazard_ratio, 0.6), adjusted.hazard_ratio
    assert adjusted.hazard_ratio.ci_high < 1
    assert adjusted.e_value.estimate > adjusted.e_value.ci_limit > 1
    # Self-selection makes the unweighted comparison overstate the effect.
    assert adjusted.unadjusted_hazard_ratio.hazard_ratio < adjusted.hazard_ratio.hazard_ratio


@pytest.mark.parametrize("seed", [1, 2])
def test_the_weights_are_stabilised_and_truncated(seed):
    adjusted = analyse(selected_cohort(effect=1.0, seed=seed)).adjusted
    weights, n = adjusted.weights, adjusted.population.n
    assert weights.lower < 1 < weights.upper
    # Truncation at the 1st and 99th percentiles changes about 1% at each end.
    assert weights.truncated_low == pytest.approx(n / 100, abs=2)
    assert weights.truncated_high == pytest.approx(n / 100, abs=2)
    assert 0.5 * n < weights.effective_n <= n
