"""Robust standard errors clustered on the person: repeat referrals are not new people."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.survival import cox


def people(n: int = 400, seed: int = 11):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    time = np.ceil(rng.exponential(300 * np.exp(-0.5 * x)))
    event = (time <= 364).astype(int)
    return pd.DataFrame({"x": x}), np.minimum(time, 364), event


def test_each_person_twice_is_no_more_certain_than_each_person_once():
    covariates, time, event = people()
    once = cox(covariates, time, event, clusters=np.arange(len(time)))
    twice_covariates = pd.concat([covariates, covariates], ignore_index=True)
    twice_time, twice_event = np.concatenate([time, time]), np.concatenate([event, event])
    naive = cox(twice_covariates, twice_time, twice_event)
    clustered = cox(
        twice_covariates, twice_time, twice_event, clusters=np.tile(np.arange(len(time)), 2)
    )

    def width(model):
        term = model.terms[0]
        return np.log(term.ci_high) - np.log(term.ci_low)

    # (Not to the last digit: each pair is a tie, which Efron's approximation weighs.)
    assert clustered.terms[0].coef == pytest.approx(once.terms[0].coef, rel=1e-2)
    # Counting each person twice shrinks the naive interval by about sqrt(2); clustering
    # on the person gives back the width of the data as it really is.
    assert width(naive) == pytest.approx(width(once) / np.sqrt(2), rel=0.1)
    assert width(clustered) == pytest.approx(width(once), rel=0.02)


def test_the_analysis_clusters_its_cox_model_on_the_person():
    from analysis.rules import AnalysisRequest
    from analysis.services import _analyse
    from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort

    once = cohort(300, seed=12)
    twice = pd.concat([once, once], ignore_index=True)
    request = AnalysisRequest(horizon_days=364, covariates=("prior_incidents",))

    def interval(raw):
        model = _analyse(raw, 0, NO_BEFORE_AFTER, request, AS_OF).cox
        term = model.covariates[0]
        return model, np.log(term.ci_high) - np.log(term.ci_low)

    as_people, width_people = interval(twice)
    _, width_referrals = interval(twice.assign(person=[str(i) for i in range(600)]))
    assert as_people.standard_errors.startswith("robust (sandwich), clustered on the person")
    # Each person's two referrals are one person's evidence, not two people's.
    assert width_people == pytest.approx(width_referrals * np.sqrt(2), rel=0.1)


def test_the_clustered_model_is_the_time_varying_one_on_whole_follow_ups():
    """The same model both ways, (0, t] intervals and plain durations: the same robust
    standard errors (Efron's residuals, as R's coxph(..., cluster = id)). The two fitters
    stop a hair apart (1e-7 in the coefficient), so the errors agree to 1e-5, not 1e-8."""
    from analysis.survival import time_varying_cox

    covariates, time, event = people(600, seed=5)
    person = np.arange(600) // 2  # two referrals each
    plain = cox(covariates, time, event, clusters=person)
    intervals = covariates.assign(id=np.arange(600), start=0.0, stop=time, event=event)
    varying = time_varying_cox(intervals, ["x"], clusters=person)
    assert plain.terms[0].coef == pytest.approx(varying[0].coef, abs=1e-6)

    def se(term):
        return np.log(term.ci_high / term.ci_low) / (2 * 1.959963984540054)

    assert se(plain.terms[0]) == pytest.approx(se(varying[0]), rel=1e-5)
    naive = cox(covariates, time, event)
    assert se(plain.terms[0]) != pytest.approx(se(naive.terms[0]), rel=1e-3)


def test_clustering_a_large_cohort_takes_linear_time():
    """200,000 referrals: lifelines' own sandwich took minutes here (quadratic)."""
    import time as clock

    rng = np.random.default_rng(3)
    n = 200_000
    x = rng.normal(size=n)
    days = np.ceil(rng.exponential(300 * np.exp(-0.3 * x)))
    started = clock.process_time()
    model = cox(
        pd.DataFrame({"x": x}), np.minimum(days, 182), (days <= 182).astype(int),
        clusters=np.arange(n) // 2,
    )  # fmt: skip
    assert model.n == n
    assert clock.process_time() - started < 60
