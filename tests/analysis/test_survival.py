"""Survival statistics against published reference values from R's survival package.

- ``aml`` (Miller 1981; R ``survival::aml``): Kaplan-Meier and the log-rank test,
  as printed by ``survfit``/``survdiff`` (R's ``conf.type = "log-log"`` for the CI).
- ``rossi`` (Rossi, Berk & Lenihan 1980; Fox & Weisberg, "Cox Proportional-Hazards
  Regression for Survival Data in R", 2011 appendix): ``coxph`` with Efron ties.
- ``heart`` (Stanford heart transplants; R ``?heart`` example): the time-varying
  ``coxph(Surv(start, stop, event) ~ age + year + surgery + transplant)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi, load_stanford_heart_transplants

from analysis.survival import AnalysisError, cox, kaplan_meier, logrank, time_varying_cox

# survival::aml, x == "Maintained" and x == "Nonmaintained"; status 1 = relapse.
MAINTAINED_T = [9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161]
MAINTAINED_E = [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0]
NONMAINTAINED_T = [5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45]
NONMAINTAINED_E = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("horizon", "survival", "low", "high"),
    [
        # survfit(Surv(time, status) ~ 1, data = aml[aml$x == "Maintained", ],
        #         conf.type = "log-log")
        (9, 0.9091, 0.5081, 0.9867),
        (18, 0.7159, 0.3502, 0.8990),
        (31, 0.4909, 0.1673, 0.7534),
        (48, 0.1841, 0.0117, 0.5250),
    ],
)
def test_kaplan_meier_matches_r_on_aml(horizon, survival, low, high):
    result = kaplan_meier(MAINTAINED_T, MAINTAINED_E, horizon)
    assert result.survival == pytest.approx(survival, abs=5e-5)
    assert result.ci_low == pytest.approx(low, abs=5e-5)
    assert result.ci_high == pytest.approx(high, abs=5e-5)


def test_restricted_mean_is_the_area_under_the_curve():
    # By hand: 9*1 + (13-9)*0.9091 + (18-13)*0.8182 + (20-18)*0.7159 to tau = 20.
    expected = 9 + 4 * (10 / 11) + 5 * (10 / 11) * (9 / 10) + 2 * (10 / 11) * (9 / 10) * (7 / 8)
    assert kaplan_meier(MAINTAINED_T, MAINTAINED_E, 20).rmst == pytest.approx(expected)


def test_events_count_only_up_to_the_horizon():
    assert kaplan_meier(MAINTAINED_T, MAINTAINED_E, 20).events == 3


def test_logrank_matches_r_survdiff_on_aml():
    # survdiff(Surv(time, status) ~ x, data = aml): Chisq = 3.4 on 1 df, p = 0.0653
    durations = MAINTAINED_T + NONMAINTAINED_T
    events = MAINTAINED_E + NONMAINTAINED_E
    groups = ["Maintained"] * 11 + ["Nonmaintained"] * 12
    result = logrank(durations, events, groups)
    assert result.statistic == pytest.approx(3.396, abs=5e-4)
    assert result.p == pytest.approx(0.0653, abs=5e-5)
    assert result.degrees_of_freedom == 1


def test_cox_matches_fox_and_weisberg_on_rossi():
    rossi = load_rossi()
    model = cox(rossi.drop(columns=["week", "arrest"]), rossi["week"], rossi["arrest"])
    published = {  # coef, se(coef) from coxph(Surv(week, arrest) ~ ., data = Rossi)
        "fin": (-0.37942, 0.19138),
        "age": (-0.05744, 0.02200),
        "race": (0.31390, 0.30799),
        "wexp": (-0.14980, 0.21222),
        "mar": (-0.43370, 0.38187),
        "paro": (-0.08487, 0.19576),
        "prio": (0.09150, 0.02865),
    }
    terms = {term.name: term for term in model.terms}
    for name, (coef, se) in published.items():
        assert terms[name].coef == pytest.approx(coef, abs=5e-5)
        assert terms[name].hazard_ratio == pytest.approx(np.exp(coef), rel=1e-4)
        assert terms[name].ci_low == pytest.approx(np.exp(coef - 1.959964 * se), rel=1e-3)
        assert terms[name].ci_high == pytest.approx(np.exp(coef + 1.959964 * se), rel=1e-3)
    assert terms["fin"].p == pytest.approx(0.0474, abs=5e-4)
    assert terms["prio"].p == pytest.approx(0.0014, abs=5e-4)
    assert model.concordance == pytest.approx(0.640, abs=1e-3)
    assert {t.name for t in model.ph_test.terms} == set(published)
    # R: cox.zph(fit)$table (transform "km"), the Rossi model.
    assert model.ph_test.global_test.chisq == pytest.approx(17.6944152544549667, abs=1e-6)
    assert (model.n, model.events) == (432, 114)


def test_time_varying_cox_matches_r_on_the_stanford_heart_data():
    heart = load_stanford_heart_transplants()
    terms = {t.name: t for t in time_varying_cox(heart, ["age", "year", "surgery", "transplant"])}
    # coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, data = heart)
    published = {"age": 0.0272, "year": -0.1463, "surgery": -0.6372, "transplant": -0.0103}
    for name, coef in published.items():
        assert terms[name].coef == pytest.approx(coef, abs=5e-4)


@pytest.mark.parametrize(
    ("durations", "events", "message"),
    [
        ([], [], "nobody"),
        ([1, -2], [1, 0], "positive"),
        ([1, 2], [1, 2], "1 .reoffended. or 0"),
        ([1, 2, 3], [1, 0], "same length"),
    ],
)
def test_bad_input_is_refused_in_plain_words(durations, events, message):
    with pytest.raises(AnalysisError, match=message):
        kaplan_meier(durations, events, 10)


def test_too_few_events_for_a_model_is_refused():
    frame = pd.DataFrame({"age": [20, 30, 40, 50, 60, 35]})
    with pytest.raises(AnalysisError, match="too few reoffences"):
        cox(frame, [5, 6, 7, 8, 9, 10], [1, 0, 0, 1, 0, 0])


def test_a_covariate_with_no_variation_is_refused():
    rossi = load_rossi().assign(mar=1)
    with pytest.raises(AnalysisError, match="no variation in: mar"):
        cox(rossi[["fin", "mar"]], rossi["week"], rossi["arrest"])


def test_a_single_group_has_no_log_rank_test():
    with pytest.raises(AnalysisError, match="two groups"):
        logrank([1, 2, 3], [1, 0, 1], ["a", "a", "a"])


def test_a_factor_is_one_term_in_the_ph_check():
    rossi = load_rossi()
    design = rossi[["fin", "age"]].assign(
        **{
            "band=young": (rossi["age"] < 21).astype(float),
            "band=mid": rossi["age"].between(21, 30).astype(float),
        }
    )
    model = cox(design, rossi["week"], rossi["arrest"])
    assert [(t.name, t.df) for t in model.ph_test.terms] == [("fin", 1), ("age", 1), ("band", 2)]
    assert model.ph_test.global_test.df == 4
