"""The proportional-hazards check on everyone: the residuals against lifelines, the
approximate test against lifelines' ``proportional_hazard_test``, the score test tied
to those residuals, and ``cox()`` testing every row, never a sample.

lifelines' test is the one R's ``cox.zph`` made before survival 3.0; ``ph_test`` (the
one published) is R 3's score test, checked against R in test_proportional_hazards.py.
Where the two share a quantity (the Schoenfeld residuals, the score they sum to) it is
checked to 1e-8 here, with tied days and strata.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from lifelines.statistics import proportional_hazard_test

from analysis.proportional_hazards import (
    approximate_ph_test,
    ph_test,
    schoenfeld_residuals,
    time_transform,
)
from analysis.survival import cox

VETERAN = Path(__file__).parents[1] / "data" / "veteran.csv"
ROSSI_TERMS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


def rossi() -> tuple[pd.DataFrame, list[str], str, str, str | None]:
    # Shuffled, so nothing relies on the rows arriving sorted.
    data = load_rossi().sample(frac=1, random_state=11)
    return data, ROSSI_TERMS, "week", "arrest", None


def rossi_stratified() -> tuple[pd.DataFrame, list[str], str, str, str | None]:
    data = load_rossi().sample(frac=1, random_state=12)
    return data, ["fin", "age", "prio"], "week", "arrest", "wexp"


def veteran_months() -> tuple[pd.DataFrame, list[str], str, str, str | None]:
    """Many ties: 137 people in 30-day months."""
    data = pd.read_csv(VETERAN)
    data["month"] = np.ceil(data["time"] / 30)
    return data[["trt", "karno", "age", "month", "status"]], ["trt", "karno", "age"], "month", \
        "status", None  # fmt: skip


def veteran_factor_stratified() -> tuple[pd.DataFrame, list[str], str, str, str | None]:
    data = pd.read_csv(VETERAN)
    data["month"] = np.ceil(data["time"] / 30)
    data["large"] = (data["celltype"] == "large").astype(float)
    return (
        data[["karno", "age", "large", "trt", "month", "status"]],
        ["karno", "age", "large"],
        "month",
        "status",
        "trt",
    )


def simulated_ties() -> tuple[pd.DataFrame, list[str], str, str, str | None]:
    """3,000 people over 40 days: almost every death shares its day with others."""
    rng = np.random.default_rng(15)
    n = 3000
    x = rng.normal(size=(n, 2))
    level = rng.integers(0, 3, n)
    hazard = np.exp(0.4 * x[:, 0] - 0.3 * x[:, 1] + 0.2 * level)
    time = np.ceil(rng.exponential(40 / hazard))
    event = (time <= 40).astype(int)
    return (
        pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "level": level.astype(float),
                      "day": np.minimum(time, 40), "event": event}),
        ["a", "b", "level"], "day", "event", None,
    )  # fmt: skip


DATA_SETS = [rossi, rossi_stratified, veteran_months, veteran_factor_stratified, simulated_ties]


def fitted(make):
    data, names, duration, event, stratum = make()
    columns = [*names, duration, event, *([stratum] if stratum else [])]
    frame = data[columns].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter = CoxPHFitter().fit(
            frame, duration, event, strata=[stratum] if stratum else None,
            fit_options={"precision": 1e-12},
        )  # fmt: skip
    strata = frame[stratum].to_numpy() if stratum else None
    arrays = (frame[names].to_numpy(float), frame[duration].to_numpy(), frame[event].to_numpy())
    return frame, names, fitter, arrays, strata


@pytest.mark.parametrize("make", DATA_SETS)
def test_the_residuals_are_lifelines_to_1e_8(make):
    frame, names, fitter, (x, t, e), strata = fitted(make)
    ours = schoenfeld_residuals(x, t, e, fitter.params_.to_numpy(), strata=strata)
    theirs = fitter.compute_residuals(frame, "schoenfeld")
    assert set(theirs.index) == set(np.flatnonzero(e == 1))
    assert ours[theirs.index.to_numpy()] == pytest.approx(theirs[names].to_numpy(), abs=1e-8)
    assert not ours[e == 0].any()


@pytest.mark.parametrize("transform", ["km", "identity", "log"])
@pytest.mark.parametrize("make", DATA_SETS)
def test_the_approximate_test_is_lifelines_to_1e_8(make, transform):
    frame, names, fitter, (x, t, e), strata = fitted(make)
    ours = approximate_ph_test(
        x, t, e, fitter.params_.to_numpy(), fitter.variance_matrix_.to_numpy(),
        names=names, strata=strata, transform=transform,
    )  # fmt: skip
    theirs = proportional_hazard_test(fitter, frame, time_transform=transform).summary
    assert [term.name for term in ours] == names
    assert [term.chisq for term in ours] == pytest.approx(
        theirs.loc[names, "test_statistic"].to_numpy(), abs=1e-8, rel=1e-9
    )
    assert [term.p for term in ours] == pytest.approx(theirs.loc[names, "p"].to_numpy(), abs=1e-8)


@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log"])
@pytest.mark.parametrize("make", DATA_SETS)
def test_the_score_test_sums_the_residuals_weighted_by_time(make, transform):
    """The score ``ph_test`` tests is the sum over deaths of g(t) times each death's
    Schoenfeld residual: the R-matched test and the lifelines-matched residuals agree."""
    _, names, fitter, (x, t, e), strata = fitted(make)
    beta = fitter.params_.to_numpy()
    residuals = schoenfeld_residuals(x, t, e, beta, strata=strata)
    g = time_transform(t.astype(float), e.astype(float), transform)
    g = g - g[e == 1].mean()
    result = ph_test(x, t, e, beta, names=names, strata=strata, transform=transform)
    assert result.score == pytest.approx(g @ residuals, abs=1e-8)


def test_cox_tests_everyone_above_twenty_thousand():
    """Not a sample: the published check is the score test on every row given."""
    rng = np.random.default_rng(2026)
    n = 25_000
    x = rng.normal(size=(n, 2))
    # The first covariate's effect fades over follow-up: a violation a sample can miss.
    time = np.ceil(rng.exponential(200 / np.exp(0.3 * x[:, 0] + 0.2 * x[:, 1])))
    event = (time <= 182).astype(int)
    duration = np.minimum(time, 182)
    frame = pd.DataFrame(x, columns=["a", "b"])
    model = cox(frame, duration, event)
    beta = np.array([term.coef for term in model.terms])
    everyone = ph_test(x, duration, event, beta, names=["a", "b"], transform="km")
    assert model.n == n
    assert [t.chisq for t in model.ph_test.terms] == pytest.approx(
        [t.chisq for t in everyone.terms], rel=1e-9
    )
    assert model.ph_test.global_test.chisq == pytest.approx(everyone.global_test.chisq, rel=1e-9)
