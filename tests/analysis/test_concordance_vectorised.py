"""The concordance index counted in runs equals lifelines' ``concordance_index``: the
same comparable, concordant and tied pairs, so the same index to the last bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from lifelines.utils import concordance_index

from analysis.survival import AnalysisError, concordance, cox


def simulated(seed: int, n: int, days: int | None, score_levels: int | None, share: float):
    rng = np.random.default_rng(seed)
    t = rng.integers(1, days, n).astype(float) if days else rng.exponential(100.0, n)
    s = rng.integers(0, score_levels, n).astype(float) if score_levels else rng.normal(size=n)
    e = (rng.random(n) < share).astype(int)
    return t, s, e


@pytest.mark.parametrize(
    ("seed", "n", "days", "score_levels", "share"),
    [
        (1, 40, 6, 4, True and 0.5),  # many ties in time and in score
        (2, 2_000, 30, 15, 0.3),
        (3, 3_000, None, None, 0.4),  # continuous: no ties at all
        (4, 5_000, 400, None, 0.05),  # days, few reoffences (the register's shape)
        (5, 500, 20, 3, 0.9),  # nearly everyone reoffends
        (6, 300, None, 5, 0.2),
    ],
)
def test_equals_lifelines(seed, n, days, score_levels, share):
    t, s, e = simulated(seed, n, days, score_levels, share)
    assert concordance(t, s, e) == pytest.approx(concordance_index(t, s, e), abs=1e-12)
    assert concordance(t, s, e) == concordance_index(t, s, e)
    assert type(concordance(t, s, e)) is float  # published as it is (msgspec, JSON)


def test_censored_and_reoffending_on_the_same_day():
    # A reoffence and a censoring on day 5: the censored one is compared with it; two
    # reoffences on the same day are not compared with each other.
    t = np.array([5.0, 5.0, 5.0, 7.0, 3.0])
    e = np.array([1, 0, 1, 1, 0])
    s = np.array([1.0, 2.0, 1.0, 0.5, 3.0])
    assert concordance(t, s, e) == concordance_index(t, s, e)


def test_no_comparable_pair_is_said_plainly():
    with pytest.raises(AnalysisError):
        concordance(np.array([1.0, 2.0]), np.array([0.1, 0.2]), np.array([0, 0]))


def test_rossi_model_concordance_is_lifelines():
    rossi = load_rossi()
    covariates = rossi.drop(columns=["week", "arrest"])
    fitter = CoxPHFitter().fit(rossi, "week", "arrest")
    model = cox(covariates, rossi["week"], rossi["arrest"])
    assert model.concordance == fitter.concordance_index_


def test_clustered_model_concordance_is_lifelines():
    rng = np.random.default_rng(7)
    n = 4_000
    covariates = pd.DataFrame({"x": rng.normal(size=n), "level": rng.integers(0, 3, n)})
    durations = rng.integers(1, 200, n).astype(float)
    events = (rng.random(n) < 0.2).astype(int)
    fitter = CoxPHFitter().fit(covariates.assign(d=durations, e=events), "d", "e")
    model = cox(covariates, durations, events, clusters=np.arange(n) // 2)
    assert model.concordance == pytest.approx(fitter.concordance_index_, abs=1e-12)
