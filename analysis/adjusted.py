"""The adjusted comparison: inverse probability of treatment weighting (IPTW).

Who engages is self-selected: people at lower risk of reoffending may be more likely to
engage, and a comparison of who engaged with who did not then flatters the programme
even with immortal time removed. Weighting each person by the inverse of the
probability of the status they had (given their measured baseline details) makes a
pseudo-population in which those details no longer predict the status, so they no
longer confound the comparison. Only *measured* details: whatever else differs
between the groups (motivation, support) still does, and the E-value says how strong
such an unmeasured difference would have to be to explain the estimate away.

Methods, stated once:

- Propensity: logistic regression of the status on the baseline covariates
  (statsmodels' GLM, binomial family, logit link).
- Weights: stabilised (Robins, Hernan & Brumback 2000): P(status) / P(status | X), so
  they average about 1 and the pseudo-population is as large as the real one.
- Truncated at their 1st and 99th percentiles (Cole & Hernan 2008): a weight beyond
  them is set to the percentile. No one is dropped; how many were changed is reported.
- Outcome: a Cox model (Efron ties) of the status alone, weighted, so the hazard ratio
  is the marginal one; robust (sandwich) standard errors clustered on the person,
  which also allow for the weights having been estimated (conservatively).
- Balance: the standardised mean difference of each covariate level between the
  groups, before and after weighting (Austin & Stuart 2015: weighted means and
  variances after weighting); |SMD| >= 0.1 is flagged as imbalance.
- E-value (VanderWeele & Ding 2017): the minimum strength of association, on the risk
  ratio scale, an unmeasured confounder would need with both the status and
  reoffending to explain the hazard ratio away. For a rare outcome (under 15% by the
  end of follow-up) the hazard ratio approximates the risk ratio; for a common one it
  is converted first with RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from statsmodels.tools.sm_exceptions import PerfectSeparationError

from analysis.survival import (
    COX_PRECISION,
    AnalysisError,
    HazardRatio,
    robust_covariance,
    wald,
)

IMBALANCE = 0.1
"""|SMD| at or above this is imbalance (Austin 2009; Stuart 2010)."""
TRUNCATE_PERCENTILES = (1.0, 99.0)
RARE_OUTCOME = 0.15
"""VanderWeele & Ding's threshold: under 15% by the end of follow-up, the HR ~ the RR."""
EXTREME_PROPENSITY = 1e-6


@dataclass(frozen=True)
class Weights:
    """Stabilised weights after truncation, and what the truncation did."""

    weights: np.ndarray
    lower: float
    upper: float
    """The 1st and 99th percentiles of the stabilised weights: the bounds applied."""
    truncated_low: int
    truncated_high: int
    """How many weights were raised to ``lower`` or lowered to ``upper``."""
    effective_n: float
    """Kish's effective sample size, (sum w)^2 / sum w^2: what the weighting leaves of n."""


@dataclass(frozen=True)
class Balance:
    covariate: str
    """A numeric covariate, or ``name=level`` for one level of a categorical one."""
    smd_before: float | None
    smd_after: float | None
    """None where a group has no one with the covariate recorded."""

    @property
    def imbalanced_before(self) -> bool:
        return self.smd_before is not None and abs(self.smd_before) >= IMBALANCE

    @property
    def imbalanced_after(self) -> bool:
        return self.smd_after is not None and abs(self.smd_after) >= IMBALANCE


@dataclass(frozen=True)
class EValue:
    estimate: float
    """For the hazard ratio itself."""
    ci_limit: float
    """For the confidence limit nearest 1 (1 when the interval includes 1)."""
    rare_outcome: bool
    risk_ratio: float
    """The risk ratio the E-value was worked out from (the HR, or its conversion)."""


@dataclass(frozen=True)
class WeightedSurvival:
    group: str
    n: int
    events: int
    survival: float
    """Weighted Kaplan-Meier share not reoffended at the end of follow-up (no interval:
    Greenwood's formula does not hold for estimated weights)."""


@dataclass(frozen=True)
class Adjusted:
    left_out: tuple[str, ...]
    """Covariate levels too rare in a group to model (fewer than ``MIN_PER_LEVEL`` people
    with or without the status): left out of the propensity model, still in the balance."""
    n: int
    events: int
    weights: Weights
    balance: tuple[Balance, ...]
    hazard_ratio: HazardRatio
    """Weighted: the adjusted comparison, robust SEs clustered on the person."""
    unadjusted: HazardRatio
    """The same people, unweighted, robust SEs likewise: what the weighting changed."""
    e_value: EValue
    survival: tuple[WeightedSurvival, ...]
    cumulative_incidence: float
    """Share reoffending by the end of follow-up (unweighted KM): decides rare or common."""


def propensity(design: pd.DataFrame, treated: np.ndarray) -> np.ndarray:
    """P(status | covariates), by logistic regression (with an intercept)."""
    exog = sm.add_constant(design.to_numpy(dtype=float), has_constant="add")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.GLM(
                np.asarray(treated, dtype=float), exog, family=sm.families.Binomial()
            ).fit()
            # Worked out lazily, so under the same silence: separation overflows here.
            scores = np.asarray(fit.fittedvalues, dtype=float)
    except (np.linalg.LinAlgError, ValueError, PerfectSeparationError) as exc:
        raise AnalysisError("the propensity model could not be fitted") from exc
    if (
        not np.all(np.isfinite(scores))
        or ((scores < EXTREME_PROPENSITY) | (scores > 1 - EXTREME_PROPENSITY)).any()
    ):
        raise AnalysisError(
            "some baseline details predict the status almost perfectly (someone had next to "
            "no chance of the status they had), so weighting cannot balance the groups"
        )
    return scores


def stabilised_weights(treated: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """P(status) / P(status | covariates): the marginal share over the propensity."""
    a = np.asarray(treated).astype(bool)
    share = a.mean()
    return np.where(a, share / scores, (1 - share) / (1 - scores))


def truncate(
    weights: np.ndarray, percentiles: tuple[float, float] = TRUNCATE_PERCENTILES
) -> Weights:
    """Weights beyond the percentiles set to them: a few extreme weights otherwise
    dominate the estimate and its variance (Cole & Hernan 2008)."""
    w = np.asarray(weights, dtype=float)
    lower, upper = (float(v) for v in np.percentile(w, percentiles))
    clipped = np.clip(w, lower, upper)
    return Weights(
        weights=clipped,
        lower=lower,
        upper=upper,
        truncated_low=int((w < lower).sum()),
        truncated_high=int((w > upper).sum()),
        effective_n=float(clipped.sum() ** 2 / (clipped**2).sum()),
    )


def _moments(x: np.ndarray, w: np.ndarray, binary: bool) -> tuple[float, float]:
    mean = float(np.average(x, weights=w))
    if binary:
        return mean, mean * (1 - mean)
    total, squares = w.sum(), (w**2).sum()
    # The weighted variance with the small-sample correction; the usual n - 1 when w = 1.
    variance = float(total / (total**2 - squares) * (w * (x - mean) ** 2).sum())
    return mean, variance


def standardised_mean_difference(
    values: np.ndarray, treated: np.ndarray, weights: np.ndarray | None = None
) -> float | None:
    """(mean in the group with the status - mean without) / the pooled SD.

    A 0/1 variable uses p(1 - p) as its variance, anything else the sample variance;
    both weighted when weights are given (Austin & Stuart 2015). Values that are NaN
    (not recorded) are left out. None if a group has no value, or neither varies.
    """
    x = np.asarray(values, dtype=float)
    a = np.asarray(treated).astype(bool)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    known = ~np.isnan(x)
    x, a, w = x[known], a[known], w[known]
    if a.sum() < 2 or (~a).sum() < 2:
        return None
    binary = bool(np.isin(x, (0.0, 1.0)).all())
    mean1, var1 = _moments(x[a], w[a], binary)
    mean0, var0 = _moments(x[~a], w[~a], binary)
    pooled = math.sqrt((var1 + var0) / 2)
    if pooled == 0:
        return None if mean1 == mean0 else math.copysign(math.inf, mean1 - mean0)
    return (mean1 - mean0) / pooled


def balance(
    covariates: pd.DataFrame, treated: np.ndarray, weights: np.ndarray
) -> tuple[Balance, ...]:
    """Each column's SMD before and after weighting."""
    return tuple(
        Balance(
            covariate=str(name),
            smd_before=standardised_mean_difference(covariates[name].to_numpy(), treated),
            smd_after=standardised_mean_difference(covariates[name].to_numpy(), treated, weights),
        )
        for name in covariates.columns
    )


def e_value(hazard_ratio: float, ci_low: float, ci_high: float, rare_outcome: bool) -> EValue:
    """VanderWeele & Ding's E-value for a hazard ratio and its interval.

    For a ratio under 1 its inverse is used; E = RR + sqrt(RR (RR - 1)).
    """

    def as_risk_ratio(hr: float) -> float:
        if rare_outcome:
            return hr
        return (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))

    def of(rr: float) -> float:
        rr = 1 / rr if rr < 1 else rr
        return rr + math.sqrt(rr * (rr - 1))

    rr = as_risk_ratio(hazard_ratio)
    if ci_low <= 1 <= ci_high:
        limit = 1.0
    else:
        limit = of(as_risk_ratio(ci_high if hazard_ratio < 1 else ci_low))
    return EValue(estimate=of(rr), ci_limit=limit, rare_outcome=rare_outcome, risk_ratio=rr)


def weighted_cox(
    treated: np.ndarray,
    durations: np.ndarray,
    events: np.ndarray,
    weights: np.ndarray,
    clusters: np.ndarray,
    name: str,
) -> HazardRatio:
    """Cox model of the status alone (Efron ties), weighted, with a robust (sandwich)
    interval clustered on the person: R's ``coxph(Surv(t, e) ~ a, weights = w,
    cluster = id)``."""
    frame = pd.DataFrame(
        {
            name: np.asarray(treated, dtype=float),
            "_duration": np.asarray(durations, dtype=float),
            "_event": np.asarray(events, dtype=int),
            "_weight": np.asarray(weights, dtype=float),
        }
    )
    try:
        with warnings.catch_warnings():
            # lifelines warns that non-integer weights need robust errors: they get them.
            warnings.simplefilter("ignore")
            fitter = CoxPHFitter().fit(
                frame,
                "_duration",
                "_event",
                weights_col="_weight",
                fit_options={"precision": COX_PRECISION},
            )
    except (ConvergenceError, np.linalg.LinAlgError, ValueError) as exc:
        raise AnalysisError("the weighted model did not converge") from exc
    coef = float(fitter.params_.iloc[0])
    covariance = robust_covariance(
        frame[[name]].to_numpy(),
        np.zeros(len(frame)),
        frame["_duration"].to_numpy(),
        frame["_event"].to_numpy(),
        frame["_weight"].to_numpy(),
        fitter.params_.to_numpy(),
        fitter.variance_matrix_.to_numpy(),
        clusters,
    )
    return wald(name, coef, math.sqrt(covariance[0, 0]))


def weighted_survival(
    durations: np.ndarray, events: np.ndarray, weights: np.ndarray, horizon: float
) -> float:
    with warnings.catch_warnings():
        # lifelines warns its variance ignores estimated weights: no variance is used.
        warnings.simplefilter("ignore")
        fitter = KaplanMeierFitter().fit(durations, events, weights=weights)
    return float(fitter.survival_function_at_times(horizon).iloc[0])


MIN_PER_LEVEL = 5
"""A level (say 'risk level not recorded') held by fewer people than this in either group
would predict the status almost perfectly and break the weights for everyone."""


def _sparse_level(column: np.ndarray, treated: np.ndarray) -> bool:
    if not np.isin(column, (0.0, 1.0)).all():
        return False
    has = column == 1
    return bool(min((has & (treated == 1)).sum(), (has & (treated == 0)).sum()) < MIN_PER_LEVEL)


MIN_PER_GROUP = 10
"""Fewer people than this with (or without) the status and the propensity model has
nothing to learn from."""


def iptw(
    design: pd.DataFrame,
    balance_columns: pd.DataFrame,
    treated: np.ndarray,
    durations: np.ndarray,
    events: np.ndarray,
    clusters: np.ndarray,
    horizon: float,
    name: str,
    labels: tuple[str, str],
) -> Adjusted:
    """The whole adjusted comparison of ``treated`` (1) against not (0).

    ``design``: the propensity model's numeric columns (reference levels left out);
    ``balance_columns``: every covariate level, for the balance table (NaN where not
    recorded); ``labels``: the names of the groups without and with the status.
    """
    a = np.asarray(treated).astype(int)
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=int)
    if min(a.sum(), (1 - a).sum()) < MIN_PER_GROUP:
        raise AnalysisError(
            f"fewer than {MIN_PER_GROUP} people with, or without, the status: too few to "
            f"model who has it"
        )
    if e.sum() < 5 or min(e[a == 1].sum(), e[a == 0].sum()) == 0:
        raise AnalysisError("too few reoffences in each group to compare them")
    varying = design.loc[:, design.nunique() > 1]
    sparse = tuple(str(c) for c in varying.columns if _sparse_level(varying[c].to_numpy(), a))
    scores = propensity(varying.drop(columns=list(sparse)), a)
    weights = truncate(stabilised_weights(a, scores))
    adjusted = weighted_cox(a, t, e, weights.weights, clusters, name)
    unadjusted = weighted_cox(a, t, e, np.ones(len(a)), clusters, name)
    overall = KaplanMeierFitter().fit(t, e).survival_function_at_times(horizon).iloc[0]
    incidence = 1 - float(overall)
    survival = tuple(
        WeightedSurvival(
            group=labels[level],
            n=int((a == level).sum()),
            events=int(e[a == level].sum()),
            survival=weighted_survival(
                t[a == level], e[a == level], weights.weights[a == level], horizon
            ),
        )
        for level in (1, 0)
    )
    return Adjusted(
        left_out=sparse,
        n=len(a),
        events=int(e.sum()),
        weights=weights,
        balance=balance(balance_columns, a, weights.weights),
        hazard_ratio=adjusted,
        unadjusted=unadjusted,
        e_value=e_value(
            adjusted.hazard_ratio,
            adjusted.ci_low,
            adjusted.ci_high,
            rare_outcome=incidence < RARE_OUTCOME,
        ),
        survival=survival,
        cumulative_incidence=incidence,
    )


def baseline_design(
    frame: pd.DataFrame, names: tuple[str, ...], references: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, int]]]:
    """The propensity model's columns, the balance table's columns, and how many people
    lack each covariate.

    No one is dropped for a missing detail: a categorical or yes/no covariate gets a
    level of its own, 'not recorded'; a numeric one an indicator that it is not
    recorded, with the recorded mean in its place in the model (in the balance table it
    is compared among those who have it). Whether a detail was recorded is then balanced
    like any other; what the missing values were is not, and cannot be.
    """
    model: dict[str, pd.Series] = {}
    table: dict[str, pd.Series] = {}
    missing: list[tuple[str, int]] = []
    for name in names:
        values = frame[name]
        lacking = int(values.isna().sum())
        if lacking:
            missing.append((name, lacking))
        categorical = name in references or all(
            isinstance(v, (bool, np.bool_, str)) for v in values.dropna().unique()
        )
        if not categorical:
            numbers = values.astype(float)
            table[name] = numbers
            model[name] = numbers.fillna(numbers.mean())
            if lacking:
                flag = numbers.isna().astype(float)
                model[f"{name} not recorded"] = table[f"{name} not recorded"] = flag
            continue
        text = values.map(
            lambda v: v if v is None or not isinstance(v, bool) else "yes" if v else "no"
        )
        text = text.astype(object).where(values.notna(), "not recorded").astype(str)
        reference = references.get(name, "no")
        for level in sorted(text.unique()):
            column = (text == level).astype(float)
            table[f"{name}={level}"] = column
            if level != reference:
                model[f"{name}={level}"] = column
    return (
        pd.DataFrame(model, index=frame.index),
        pd.DataFrame(table, index=frame.index),
        missing,
    )
