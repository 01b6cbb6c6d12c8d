"""The weighted Cox model's robust (sandwich) interval, clustered on the person, and the
time-varying model's, against R's ``survival``.

Reference values from R 4.2.2, survival 3.5-3 (Debian's r-base-core, r-cran-survival),
on the two files in tests/data (days, so with many tied days; people with more than one
row; weights not integers):

    > library(survival); options(digits = 15)
    > d <- read.csv("weighted_clustered.csv")
    > fit <- coxph(Surv(t, e) ~ a, data = d, weights = w, cluster = id, ties = "efron")
    > print(c(coef(fit), sqrt(diag(vcov(fit))), sqrt(diag(fit$naive.var))))
                    a                 a
    0.279842589557872 0.190822450490044 0.127487307632098
    > print(summary(fit)$conf.int)
             exp(coef)        exp(-coef)         lower .95        upper .95
    a 1.32292155428011 0.755902719072535 0.910134816136017 1.92292549164206
    > tv <- read.csv("time_varying_clustered.csv")
    > fit2 <- coxph(Surv(start, stop, event) ~ eng + x, data = tv, cluster = person,
    +               ties = "efron")
    > print(coef(fit2)); print(sqrt(diag(vcov(fit2))))
                     eng                    x
     0.00297152532845777 -0.05326622324350027
                   eng                  x
    0.1996797132137204 0.0853185520323353
    > print(summary(fit2)$conf.int)
                exp(coef)        exp(-coef)         lower .95        upper .95
    eng 1.002975944686173 0.997032885283102 0.678145426273229 1.48339973499108
    x   0.948127565284451 1.054710396169092 0.802127655416326 1.12070176608690
    > fit3 <- coxph(Surv(start, stop, event) ~ eng + x, data = tv, cluster = id,
    +               ties = "efron")
    > print(sqrt(diag(vcov(fit3))))
                   eng                  x
    0.2094604641005173 0.0763419993697603

(lifelines' own sandwich gives 0.190644 for the first: it uses Breslow's score
residuals, 0.1% off R's on tied days, and it cannot take (start, stop] intervals.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.adjusted import weighted_cox
from analysis.survival import time_varying_cox

DATA = Path(__file__).parents[1] / "data"


def test_the_weighted_cox_model_and_its_clustered_robust_interval_match_r():
    d = pd.read_csv(DATA / "weighted_clustered.csv")
    hr = weighted_cox(
        d["a"].to_numpy(), d["t"].to_numpy(), d["e"].to_numpy(), d["w"].to_numpy(),
        d["id"].to_numpy(), "a",
    )  # fmt: skip
    assert hr.coef == pytest.approx(0.279842589557872, abs=1e-6)
    assert hr.hazard_ratio == pytest.approx(1.32292155428011, rel=1e-6)
    assert hr.ci_low == pytest.approx(0.910134816136017, rel=1e-6)
    assert hr.ci_high == pytest.approx(1.92292549164206, rel=1e-6)
    se = (np.log(hr.ci_high) - np.log(hr.ci_low)) / (2 * 1.959963984540054)
    assert se == pytest.approx(0.190822450490044, rel=1e-6)


def test_the_time_varying_model_clustered_on_the_person_matches_r():
    tv = pd.read_csv(DATA / "time_varying_clustered.csv")
    terms = time_varying_cox(tv, ["eng", "x"], clusters=tv["person"].to_numpy())
    assert [t.coef for t in terms] == pytest.approx(
        [0.00297152532845777, -0.05326622324350027], abs=1e-6
    )
    assert [t.ci_low for t in terms] == pytest.approx(
        [0.678145426273229, 0.802127655416326], rel=1e-6
    )
    assert [t.ci_high for t in terms] == pytest.approx(
        [1.48339973499108, 1.12070176608690], rel=1e-6
    )
    by_referral = time_varying_cox(tv, ["eng", "x"], clusters=tv["id"].to_numpy())
    se = [(np.log(t.ci_high) - np.log(t.ci_low)) / (2 * 1.959963984540054) for t in by_referral]
    assert se == pytest.approx([0.2094604641005173, 0.0763419993697603], rel=1e-6)
