"""The proportional-hazards score test against R 3.5's ``cox.zph``.

Reference values from R 3.5.3 (survival 3.5-3), Debian's r-cran-survival:

    library(survival); options(digits = 15)
    rossi <- read.csv("rossi.csv")          # lifelines' load_rossi(), written out
    fit <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
                 data = rossi, ties = "efron")
    for (tr in c("km", "rank", "identity", "log")) print(cox.zph(fit, transform = tr)$table)
    # many ties: the veteran data in 30-day months
    veteran$month <- ceiling(veteran$time / 30)
    fit3 <- coxph(Surv(month, status) ~ trt + karno + age, data = veteran)
    # a factor (3 df) and a stratified model
    fit2 <- coxph(Surv(time, status) ~ trt + karno + diagtime + age + factor(celltype),
                  data = veteran)
    fit4 <- coxph(Surv(week, arrest) ~ fin + age + prio + strata(wexp), data = rossi)

The coefficients are R's, printed by ``coef(fit)``, so the test checks the score
test itself; ``test_survival.py`` checks our fit gives the same test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi

from analysis.proportional_hazards import ph_test, time_transform

ROSSI_TERMS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
ROSSI_COEF = [
    -0.3794221664858867, -0.0574377426840623, 0.3138997878424986, -0.1497956976665371,
    -0.4337038779373086, -0.0848710825003947, 0.0914970809852960,
]  # fmt: skip
# cox.zph(fit, transform = ...)$table: chisq per term, then GLOBAL (7 df).
ROSSI_R = {
    "km": [0.0624297513580852, 5.9739816534184254, 2.0682653874805230, 4.2245956334215924,
           1.0110215644357541, 0.0183832991689653, 0.5205842503030125, 17.6944152544549667],
    "rank": [1.3838084514070266, 0.8964214615663005, 2.2599781512000385, 4.1596837531656865,
             0.0895921418466064, 0.0218516556887065, 1.6408034519444628, 11.0251834071225563],
    "identity": [0.00895055875129511, 6.61594378929424654, 2.14442625678453691,
                 3.87675512467369865, 1.03134831871162924, 0.02817659872311458,
                 0.42479839630292304, 18.18268703912928430],
    "log": [0.1375994332571190, 8.2314983419423253, 1.6170849394269216, 2.0858548410984485,
            1.1259733148419044, 0.2192028103309911, 0.0134790732013021, 17.6615705707481574],
}  # fmt: skip
ROSSI_P_KM = [
    0.8026960327310469, 0.0145184627739779, 0.1503924881358293, 0.0398421117132655,
    0.3146582281404045, 0.8921493439606221, 0.4705925638172174, 0.0134275067856751,
]  # fmt: skip

VETERAN = Path(__file__).parents[1] / "data" / "veteran.csv"


def chisqs(result) -> list[float]:
    return [t.chisq for t in (*result.terms, result.global_test)]


@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log"])
def test_rossi_matches_r_for_every_transform(transform):
    rossi = load_rossi()
    result = ph_test(
        rossi[ROSSI_TERMS].to_numpy(), rossi["week"].to_numpy(), rossi["arrest"].to_numpy(),
        np.array(ROSSI_COEF), names=ROSSI_TERMS, transform=transform,
    )  # fmt: skip
    assert chisqs(result) == pytest.approx(ROSSI_R[transform], abs=1e-8)
    assert [t.df for t in result.terms] == [1] * 7 and result.global_test.df == 7
    if transform == "km":
        assert [t.p for t in (*result.terms, result.global_test)] == pytest.approx(
            ROSSI_P_KM, abs=1e-10
        )


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        ("km", [0.420061685507595, 12.707942887925565, 1.253265163575295, 19.038679684681334]),
        ("rank", [0.574651852183454, 13.359622523457039, 1.119789636332080, 20.167539634120779]),
    ],
)
def test_many_tied_times_match_r(transform, expected):
    veteran = pd.read_csv(VETERAN)
    month = np.ceil(veteran["time"] / 30)
    assert month.nunique() < len(veteran) / 4  # most people share their time with others
    result = ph_test(
        veteran[["trt", "karno", "age"]].to_numpy(), month.to_numpy(),
        veteran["status"].to_numpy(),
        np.array([0.19545096973996576, -0.03292419397582924, -0.00205226340901875]),
        names=["trt", "karno", "age"], transform=transform,
    )  # fmt: skip
    assert chisqs(result) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        ("km", [0.29350146340232602, 12.97629862546822466, 0.00114058912681524,
                1.87661918241786618, 14.85061247734723722, 29.80760261299976221]),
        ("rank", [3.05307479994765e-01, 1.35696741668330e01, 7.19879465259427e-05,
                  1.81826011140522e00, 1.50205321378117e01, 3.02458805590037e01]),
    ],
)  # fmt: skip
def test_a_factor_is_tested_as_one_term_with_its_degrees_of_freedom(transform, expected):
    veteran = pd.read_csv(VETERAN)
    levels = ["smallcell", "adeno", "large"]  # R's reference level is squamous
    design = veteran[["trt", "karno", "diagtime", "age"]].assign(
        **{level: (veteran["celltype"] == level).astype(float) for level in levels}
    )
    result = ph_test(
        design.to_numpy(), veteran["time"].to_numpy(), veteran["status"].to_numpy(),
        np.array([0.29838035470701291, -0.03258559357000345, 0.00133915289408673,
                  -0.00870570029397098, 0.85120646771309261, 1.18366690154124021,
                  0.40100076290947118]),
        names=list(design.columns),
        terms={"trt": [0], "karno": [1], "diagtime": [2], "age": [3], "celltype": [4, 5, 6]},
        transform=transform,
    )  # fmt: skip
    assert chisqs(result) == pytest.approx(expected, rel=1e-9)
    assert [t.df for t in result.terms] == [1, 1, 1, 1, 3]


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        ("km", [0.0556688161031574, 11.4289325593164470, 0.0569918698543512, 11.4470770115431666]),
        ("rank", [1.35180517667488, 3.00047598567536, 0.74435697000379, 4.67625505542520]),
    ],
)
def test_a_stratified_model_matches_r(transform, expected):
    rossi = load_rossi()
    result = ph_test(
        rossi[["fin", "age", "prio"]].to_numpy(), rossi["week"].to_numpy(),
        rossi["arrest"].to_numpy(),
        np.array([-0.3508034440822992, -0.0600149996102659, 0.0878762105309266]),
        names=["fin", "age", "prio"], strata=rossi["wexp"].to_numpy(), transform=transform,
    )  # fmt: skip
    assert chisqs(result) == pytest.approx(expected, abs=1e-8)


def test_the_order_of_the_rows_changes_nothing():
    """Shuffling the same data moved lifelines' rank-transform p from 0.498 to 0.523."""
    rossi = load_rossi()
    shuffled = rossi.sample(frac=1, random_state=7)
    results = [
        ph_test(
            frame[ROSSI_TERMS].to_numpy(), frame["week"].to_numpy(), frame["arrest"].to_numpy(),
            np.array(ROSSI_COEF), names=ROSSI_TERMS, transform="rank",
        )
        for frame in (rossi, shuffled)
    ]  # fmt: skip
    assert chisqs(results[0]) == pytest.approx(chisqs(results[1]), rel=1e-12)


@pytest.mark.parametrize("transform", ["km", "rank"])
def test_equal_times_get_equal_values(transform):
    times = np.array([5, 3, 5, 1, 3, 5, 8])
    events = np.array([1, 1, 0, 1, 1, 1, 0])
    g = time_transform(times, events, transform)
    for value in np.unique(times):
        assert len(set(g[times == value])) == 1


def test_the_km_transform_is_one_minus_survival_just_before_each_time():
    times = np.array([1, 2, 2, 3, 4])
    events = np.array([1, 1, 0, 1, 0])
    # KM: S(1) = 4/5, S(2) = 4/5 * 3/4 = 3/5, S(3) = 3/5 * 1/2 = 3/10.
    assert time_transform(times, events, "km") == pytest.approx([0, 0.2, 0.2, 0.4, 0.7])


def test_simulated_proportional_hazards_are_rarely_flagged_and_a_changing_effect_is():
    """Known truth: with a constant hazard ratio the test holds its size; with an effect
    that reverses halfway it finds it."""
    rng = np.random.default_rng(2026)
    flagged_constant, flagged_changing = 0, 0
    for _ in range(40):
        x = rng.binomial(1, 0.5, 400).astype(float)
        constant = rng.exponential(1 / np.exp(0.7 * x))
        early = rng.exponential(1 / np.exp(1.2 * x))
        late = 0.5 + rng.exponential(1 / np.exp(-1.2 * x))
        changing = np.where(early < 0.5, early, late)
        for times, counter in ((constant, "constant"), (changing, "changing")):
            censor = np.minimum(times, 2.0)
            event = (times <= 2.0).astype(float)
            from lifelines import CoxPHFitter

            frame = pd.DataFrame({"x": x, "t": censor, "e": event})
            beta = CoxPHFitter().fit(frame, "t", "e").params_.to_numpy()
            p = ph_test(x[:, None], censor, event, beta, names=["x"]).global_test.p
            if p < 0.05:
                if counter == "constant":
                    flagged_constant += 1
                else:
                    flagged_changing += 1
    assert flagged_constant <= 6  # about 5% of 40, with room for chance
    assert flagged_changing >= 36
