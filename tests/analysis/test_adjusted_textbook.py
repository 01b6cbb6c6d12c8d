"""E-values, standardised mean differences and stabilised, truncated weights, against
values worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.adjusted import (
    baseline_design,
    e_value,
    stabilised_weights,
    standardised_mean_difference,
    truncate,
)


def test_vanderweele_and_dings_example():
    # VanderWeele & Ding (2017), Ann Intern Med 167:268: RR 3.9 (95% CI 1.8 to 8.7) gives an
    # E-value of 7.26 for the estimate and 3.0 for the lower limit, the one nearest 1.
    result = e_value(3.9, 1.8, 8.7, rare_outcome=True)
    assert result.estimate == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert round(result.estimate, 2) == 7.26
    assert result.ci_limit == pytest.approx(3.0)  # 1.8 + sqrt(1.8 * 0.8) = 1.8 + 1.2
    assert result.risk_ratio == 3.9


def test_a_protective_ratio_is_inverted_and_its_upper_limit_is_the_one_nearest_1():
    result = e_value(0.5, 0.25, 0.8, rare_outcome=True)
    assert result.estimate == pytest.approx(2 + math.sqrt(2))  # 1 / 0.5 = 2
    assert result.ci_limit == pytest.approx(1.25 + math.sqrt(1.25 * 0.25))  # 1 / 0.8


def test_an_interval_including_1_has_an_e_value_of_1():
    assert e_value(1.3, 0.9, 1.9, rare_outcome=True).ci_limit == 1.0
    assert e_value(0.8, 0.6, 1.05, rare_outcome=False).ci_limit == 1.0


def test_a_common_outcome_converts_the_hazard_ratio_first():
    # By hand: sqrt(0.65) = 0.806226, 0.5 ** 0.806226 = 0.571876; sqrt(1 / 0.65) = 1.240347,
    # 0.5 ** 1.240347 = 0.423271; RR = (1 - 0.571876) / (1 - 0.423271) = 0.742331.
    # E = 1 / 0.742331 + sqrt(1.347108 * 0.347108) = 1.347108 + 0.683807 = 2.030915.
    common = e_value(0.65, 0.5, 0.85, rare_outcome=False)
    assert common.risk_ratio == pytest.approx(0.742331, abs=1e-6)
    assert common.estimate == pytest.approx(2.030915, abs=1e-5)
    # The rare-outcome E-value for the same HR is larger: a hazard ratio overstates a
    # common outcome's risk ratio, so using it directly would overstate robustness.
    assert e_value(0.65, 0.5, 0.85, rare_outcome=True).estimate > common.estimate


def test_smd_of_a_binary_covariate():
    # 10 of 20 against 6 of 20: (0.5 - 0.3) / sqrt((0.25 + 0.21) / 2) = 0.417029.
    x = np.array([1] * 10 + [0] * 10 + [1] * 6 + [0] * 14)
    treated = np.array([1] * 20 + [0] * 20)
    assert standardised_mean_difference(x, treated) == pytest.approx(0.2 / math.sqrt(0.23))
    assert standardised_mean_difference(x, treated) == pytest.approx(0.417029, abs=1e-6)


def test_smd_of_a_numeric_covariate_uses_the_sample_variances():
    # Means 3 and 4, each with variance 2.5 (n - 1): -1 / sqrt(2.5) = -0.632456.
    x = np.array([1, 2, 3, 4, 5, 2, 3, 4, 5, 6])
    treated = np.array([1] * 5 + [0] * 5)
    assert standardised_mean_difference(x, treated) == pytest.approx(-0.632456, abs=1e-6)


def test_weighting_can_remove_a_difference_and_not_recorded_values_are_left_out():
    x = np.array([0, 1, 0, 1, np.nan])
    treated = np.array([1, 1, 0, 0, 0])
    # Unweighted the shares are equal; weights 3:1 make the untreated share 0.25:
    # (0.5 - 0.25) / sqrt((0.25 + 0.1875) / 2) = 0.534522.
    assert standardised_mean_difference(x, treated) == 0.0
    weighted = standardised_mean_difference(x, treated, np.array([1, 1, 3, 1, 100.0]))
    assert weighted == pytest.approx(0.534522, abs=1e-6)


def test_stabilised_weights():
    treated = np.array([1, 0, 0, 0])  # P(treated) = 0.25
    scores = np.array([0.5, 0.5, 0.25, 0.75])
    assert stabilised_weights(treated, scores) == pytest.approx([0.5, 1.5, 1.0, 3.0])


def test_truncation_at_the_1st_and_99th_percentiles_drops_no_one():
    w = np.arange(1.0, 101.0)  # percentiles 1.99 and 99.01 (linear interpolation)
    result = truncate(w)
    assert (result.lower, result.upper) == pytest.approx((1.99, 99.01))
    assert (result.truncated_low, result.truncated_high) == (1, 1)
    assert len(result.weights) == 100
    assert result.weights.min() == pytest.approx(1.99) and result.weights.max() == 99.01
    assert truncate(np.ones(10)).effective_n == pytest.approx(10)


def test_missing_details_are_a_level_of_their_own_and_no_one_is_dropped():
    frame = pd.DataFrame(
        {
            "risk_level": ["standard", "high", None, "standard"],
            "prior_incidents": [1, None, 3, 2],
            "substance_misuse": [True, False, None, True],
        },
        dtype=object,
    )
    names = ("risk_level", "prior_incidents", "substance_misuse")
    model, table, missing = baseline_design(frame, names, {"risk_level": "standard"})
    assert missing == [("risk_level", 1), ("prior_incidents", 1), ("substance_misuse", 1)]
    assert list(model.columns) == [
        "risk_level=high",
        "risk_level=not recorded",
        "prior_incidents",
        "prior_incidents not recorded",
        "substance_misuse=not recorded",
        "substance_misuse=yes",
    ]
    assert model["prior_incidents"].tolist() == [1, 2, 3, 2]  # the recorded mean in the gap
    assert np.isnan(table["prior_incidents"][1])  # balance compares the recorded only
    assert "risk_level=standard" in table and "substance_misuse=no" in table
    assert len(model) == len(table) == 4


def test_a_covariate_that_decides_the_status_is_refused_in_words():
    from analysis.adjusted import propensity
    from analysis.survival import AnalysisError

    age = pd.DataFrame({"age_at_referral": np.arange(20.0, 60.0)})
    engaged = (age["age_at_referral"] >= 40).to_numpy().astype(int)  # the older all engage
    with pytest.raises(AnalysisError, match="predict the status almost perfectly"):
        propensity(age, engaged)
