"""Survival analysis of reoffending: pure functions over arrays, named frozen results.

Assumptions, stated once:

- Durations are days from the time origin (the referral's received date) to
  the first event or to censoring; every duration is > 0.
- Censoring is right-censoring only, and assumed non-informative.
- Ties: Kaplan-Meier handles tied event times exactly; Cox models use Efron's
  approximation (as R's ``coxph`` and lifelines do).
- Confidence intervals are 95% unless stated: Kaplan-Meier uses the
  log(-log) ("exponential Greenwood") transform, R's ``conf.type = "log-log"``.

Computation is lifelines' and scipy's; this module checks inputs, shapes the
results, and turns the libraries' failures into plain-worded errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, CoxTimeVaryingFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import restricted_mean_survival_time
from scipy.stats import norm

from analysis.proportional_hazards import PHTest, ph_test
from programme.platform.errors import FieldError, InvalidInput


class AnalysisError(InvalidInput):
    """The data cannot support the analysis asked for (said in plain words): a 422."""

    default_message = "The analysis cannot be done on this data."

    def __init__(self, reason: str) -> None:
        super().__init__(errors=[FieldError("analysis", "", reason)])
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Survival:
    """Kaplan-Meier proportion without the event at ``horizon``, and the restricted mean."""

    n: int
    events: int
    survival: float
    ci_low: float | None
    ci_high: float | None
    """None when no one has reoffended by the horizon: the survival is 1 with no variance,
    and a log(-log) interval does not exist there (R's survfit gives none, not [1, 1])."""
    rmst: float
    """Restricted mean event-free time up to the horizon, in days."""


@dataclass(frozen=True)
class LogRank:
    statistic: float
    p: float
    degrees_of_freedom: int


@dataclass(frozen=True)
class HazardRatio:
    name: str
    coef: float
    hazard_ratio: float
    ci_low: float
    ci_high: float
    p: float


@dataclass(frozen=True)
class CoxModel:
    terms: tuple[HazardRatio, ...]
    concordance: float
    ph_test: PHTest
    """Proportional-hazards check per term and globally, on everyone (R's cox.zph score
    test). A small p suggests the hazard ratio changes over time."""
    n: int
    events: int


def _check(durations: Sequence[float] | np.ndarray, events: Sequence[int] | np.ndarray):
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events)
    if t.ndim != 1 or t.shape != e.shape:
        raise AnalysisError("durations and events must be two lists of the same length")
    if len(t) == 0:
        raise AnalysisError("there is nobody to analyse")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise AnalysisError("every duration must be a positive number of days")
    if not np.isin(e, (0, 1, True, False)).all():
        raise AnalysisError("events must be 1 (reoffended) or 0 (censored)")
    return t, e.astype(int)


def kaplan_meier(
    durations: Sequence[float] | np.ndarray, events: Sequence[int] | np.ndarray, horizon: float
) -> Survival:
    """The proportion not reoffended at ``horizon`` with its 95% CI, and the RMST."""
    t, e = _check(durations, events)
    if horizon <= 0:
        raise AnalysisError("the horizon must be a positive number of days")
    fitter = KaplanMeierFitter().fit(t, e)
    at = fitter.survival_function_at_times(horizon).iloc[0]
    band = fitter.confidence_interval_survival_function_
    row = band[band.index <= horizon].iloc[-1]
    reoffences = int(e[t <= horizon].sum())
    return Survival(
        n=len(t),
        events=reoffences,
        survival=float(at),
        ci_low=float(row.iloc[0]) if reoffences else None,
        ci_high=float(row.iloc[1]) if reoffences else None,
        rmst=float(restricted_mean_survival_time(fitter, t=horizon)),
    )


def logrank(
    durations: Sequence[float] | np.ndarray,
    events: Sequence[int] | np.ndarray,
    groups: Sequence[str] | np.ndarray,
) -> LogRank:
    """Log-rank test that the groups share one survival curve (k groups, k-1 df)."""
    t, e = _check(durations, events)
    g = np.asarray(groups)
    if g.shape != t.shape:
        raise AnalysisError("groups must be as long as durations")
    levels = np.unique(g)
    if len(levels) < 2:
        raise AnalysisError("a log-rank test needs at least two groups")
    result = multivariate_logrank_test(t, g, e)
    return LogRank(
        statistic=float(result.test_statistic),
        p=float(result.p_value),
        degrees_of_freedom=len(levels) - 1,
    )


def _terms(fitter: CoxPHFitter | CoxTimeVaryingFitter) -> tuple[HazardRatio, ...]:
    summary = fitter.summary
    return tuple(
        HazardRatio(
            name=str(name),
            coef=float(row["coef"]),
            hazard_ratio=float(row["exp(coef)"]),
            ci_low=float(row["exp(coef) lower 95%"]),
            ci_high=float(row["exp(coef) upper 95%"]),
            p=float(row["p"]),
        )
        for name, row in summary.iterrows()
    )


def _enough(events: int, terms: int) -> None:
    if events < max(5, 2 * terms):
        raise AnalysisError(
            f"too few reoffences ({events}) to fit a model with {terms} terms; "
            f"at least {max(5, 2 * terms)} are needed"
        )


def _no_constant_columns(frame: pd.DataFrame) -> None:
    constant = [c for c in frame.columns if frame[c].nunique(dropna=False) < 2]
    if constant:
        raise AnalysisError(
            "no variation in: " + ", ".join(constant) + " (everyone has the same value)"
        )


PH_TRANSFORM = "km"
"""R's default time transform for the proportional-hazards check: 1 - KM(t-)."""

COX_PRECISION = 1e-10
"""Newton-Raphson stops when the log-likelihood changes less than this (lifelines'
default, 1e-7, can stop short of R's estimates on flat likelihoods)."""


def _term_columns(columns: Sequence[str]) -> dict[str, list[int]]:
    """Dummy columns of one variable (``risk_level=high``, ``risk_level=medium``) are one term."""
    terms: dict[str, list[int]] = {}
    for index, column in enumerate(columns):
        terms.setdefault(column.split("=", 1)[0], []).append(index)
    return terms


def cox(
    covariates: pd.DataFrame,
    durations: Sequence[float] | np.ndarray,
    events: Sequence[int] | np.ndarray,
    clusters: Sequence[object] | np.ndarray | None = None,
) -> CoxModel:
    """Cox proportional-hazards model (Efron ties) with hazard ratios and 95% CIs.

    ``covariates`` must already be numeric (categorical variables dummy-coded
    against their reference level by the caller, who states it). With ``clusters``
    (the person behind each referral), standard errors are robust (sandwich) and
    clustered, as R's ``coxph(..., cluster = id)``: one person's referrals are not
    independent, and treating them so would make the intervals too narrow.
    """
    t, e = _check(durations, events)
    if len(covariates) != len(t):
        raise AnalysisError("covariates must have one row per person")
    if covariates.shape[1] == 0:
        raise AnalysisError("name at least one covariate")
    _no_constant_columns(covariates)
    _enough(int(e.sum()), covariates.shape[1])
    frame = covariates.reset_index(drop=True).assign(_duration=t, _event=e)
    if clusters is not None and len(clusters) != len(t):
        raise AnalysisError("clusters must have one entry per person")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter = CoxPHFitter().fit(
                frame,
                "_duration",
                "_event",
                batch_mode=len(frame) > 20_000,
                fit_options={"precision": COX_PRECISION},
            )
    except ConvergenceError as exc:
        raise AnalysisError(
            "the model did not converge (often a covariate that almost perfectly predicts "
            "reoffending, or too few events)"
        ) from exc
    # lifelines' copy is done with; the covariates once more as one array for the
    # sandwich and the PH test (each took its own before).
    del frame
    x = covariates.to_numpy(dtype=float)
    if clusters is None:
        terms = _terms(fitter)
    else:
        # The sandwich by ``robust_covariance`` (Efron's score residuals, as R's), not
        # lifelines' ``robust=True``: that loops over every row and, for each, over all
        # the rows before it, so its time grows with the square of the cohort (minutes
        # at 200,000 referrals, hours at a million), and it uses Breslow's residuals.
        coef = fitter.params_.to_numpy()
        covariance = robust_covariance(
            x,
            np.zeros(len(t)),
            t,
            e,
            np.ones(len(t)),
            coef,
            fitter.variance_matrix_.to_numpy(),
            clusters,
        )
        terms = tuple(
            wald(str(name), float(b), float(np.sqrt(covariance[i, i])))
            for i, (name, b) in enumerate(zip(fitter.params_.index, coef, strict=True))
        )
    if any(not np.isfinite(term.coef) for term in terms):
        raise AnalysisError("the model gave no finite estimate; check the covariates")
    columns = [str(c) for c in covariates.columns]
    ph = ph_test(
        x,
        t,
        e,
        fitter.params_.to_numpy(),
        names=columns,
        terms=_term_columns(columns),
        transform=PH_TRANSFORM,
    )
    # The partial hazards lifelines computed in the fit (centred covariates) with the
    # durations beside them, so the ranking, ties included, is the one its
    # ``concordance_index_`` would count.
    hazards = fitter._predicted_partial_hazards_
    return CoxModel(
        terms=terms,
        concordance=concordance(
            hazards["T"].to_numpy(), -hazards["P"].to_numpy(), hazards["E"].to_numpy()
        ),
        ph_test=ph,
        n=len(t),
        events=int(e.sum()),
    )


def concordance(durations: np.ndarray, scores: np.ndarray, events: np.ndarray) -> float:
    """Harrell's concordance index, counted exactly as lifelines' ``concordance_index``.

    A pair is comparable when the one who left first reoffended: a reoffence at day t is
    compared with everyone who reoffended before t, a censoring at day t with everyone who
    reoffended on or before t. It is concordant when the later one has the higher score
    (a longer predicted time), half when the scores tie. lifelines counts the pairs in a
    Python loop, one binary-tree walk per person (seconds at a million); here the people
    are taken in runs that share the same set of earlier reoffenders (a few per follow-up
    day), and each run is counted at once against those reoffenders' sorted scores. The
    counts are whole numbers, so the index is the same to the last bit.
    """
    t = np.asarray(durations, dtype=float)
    s = np.asarray(scores, dtype=float)
    died = np.asarray(events).astype(bool)
    # By time, and at the same time the reoffenders first: they are not compared with
    # each other, but the censored at that time are compared with them.
    order = np.lexsort((~died, t))
    t, s, died = t[order], s[order], died[order]
    # How many reoffended before each person in that order, counting only earlier times
    # (reoffenders at the same time are not before one another).
    new_time = np.r_[True, t[1:] != t[:-1]]
    first_of_time = np.maximum.accumulate(np.where(new_time, np.arange(len(t)), 0))
    died_so_far = np.r_[0, np.cumsum(died)]
    earlier = np.where(died, died_so_far[first_of_time], died_so_far[np.arange(len(t))])
    died_scores = s[died]
    starts = np.flatnonzero(np.r_[True, earlier[1:] != earlier[:-1]])
    ends = np.r_[starts[1:], len(t)]
    correct = tied = pairs = 0
    pool = np.empty(0)
    inserted = 0
    for start, end in zip(starts, ends, strict=True):
        before = int(earlier[start])
        if before == 0:
            continue
        if before > inserted:
            added = np.sort(died_scores[inserted:before])
            pool = np.insert(pool, np.searchsorted(pool, added), added)
            inserted = before
        run = s[start:end]
        below = np.searchsorted(pool, run, side="left")
        correct += int(below.sum())
        tied += int((np.searchsorted(pool, run, side="right") - below).sum())
        pairs += before * int(end - start)
    if pairs == 0:
        raise AnalysisError("no comparable pairs: no one reoffended before anyone else left")
    return float((correct + tied / 2) / pairs)


def time_varying_cox(
    intervals: pd.DataFrame,
    covariates: Sequence[str],
    clusters: Sequence[object] | np.ndarray | None = None,
) -> tuple[HazardRatio, ...]:
    """Cox model on (id, start, stop, event, covariates...) intervals (Efron ties).

    Used for programme status as a time-varying covariate: a person counts as
    engaged only from the day they engaged, so time before that is not
    credited to the programme (no immortal-time bias). With ``clusters`` (the person
    behind each interval's referral), standard errors are robust (sandwich) and
    clustered, as R's ``coxph(Surv(start, stop, event) ~ ..., cluster = id)``.
    """
    needed = {"id", "start", "stop", "event", *covariates}
    missing = needed - set(intervals.columns)
    if missing:
        raise AnalysisError("missing columns: " + ", ".join(sorted(missing)))
    if (intervals["stop"] <= intervals["start"]).any():
        raise AnalysisError("every interval must end after it starts")
    _no_constant_columns(intervals[list(covariates)])
    _enough(int(intervals["event"].sum()), len(covariates))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter = CoxTimeVaryingFitter().fit(
                intervals[["id", "start", "stop", "event", *covariates]],
                id_col="id",
                event_col="event",
                start_col="start",
                stop_col="stop",
                fit_options={"precision": COX_PRECISION},
            )
    except ConvergenceError as exc:
        raise AnalysisError("the time-varying model did not converge") from exc
    if clusters is None:
        return _terms(fitter)
    if len(clusters) != len(intervals):
        raise AnalysisError("clusters must have one entry per interval")
    coef = fitter.params_.to_numpy()
    covariance = robust_covariance(
        intervals[list(covariates)].to_numpy(dtype=float),
        intervals["start"].to_numpy(),
        intervals["stop"].to_numpy(),
        intervals["event"].to_numpy(),
        np.ones(len(intervals)),
        coef,
        fitter.variance_matrix_.to_numpy(),
        clusters,
    )
    return tuple(
        wald(str(name), float(b), float(np.sqrt(covariance[i, i])))
        for i, (name, b) in enumerate(zip(fitter.params_.index, coef, strict=True))
    )


def wald(name: str, coef: float, se: float) -> HazardRatio:
    """Hazard ratio, 95% Wald interval and two-sided p from a coefficient and its SE."""
    if not (np.isfinite(coef) and np.isfinite(se)):
        raise AnalysisError("the model gave no finite estimate; check the covariates")
    z = float(norm.ppf(0.975))
    # A coefficient running off to infinity (a group with no reoffence) has an interval
    # reaching 0 or infinity: said as such, not as an overflow.
    with np.errstate(over="ignore"):
        return HazardRatio(
            name=name,
            coef=coef,
            hazard_ratio=float(np.exp(coef)),
            ci_low=float(np.exp(coef - z * se)),
            ci_high=float(np.exp(coef + z * se)),
            p=float(2 * norm.sf(abs(coef / se))) if se > 0 else 0.0,
        )


def robust_covariance(
    covariates: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    events: np.ndarray,
    weights: np.ndarray,
    coef: np.ndarray,
    naive_variance: np.ndarray,
    clusters: Sequence[object] | np.ndarray,
) -> np.ndarray:
    """The robust (sandwich) covariance of a Cox model, clustered: R's ``coxph(...,
    cluster = id)``, ``weights`` and (start, stop] intervals included.

    ``V (sum over clusters of U_c U_c') V``, V the model-based covariance and U_c the
    sum of the cluster's weighted score residuals. The residuals are Efron's, as R's
    (lifelines' sandwich uses Breslow's: 0.1% off R on data with tied days, and it
    ignores delayed entry, so it cannot serve a time-varying model). Computed with
    cumulative sums over the distinct event days: linear in the rows, not quadratic.
    """
    x = np.asarray(covariates, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    t0, t1 = np.asarray(start, dtype=float), np.asarray(stop, dtype=float)
    died = np.asarray(events).astype(bool)
    w = np.asarray(weights, dtype=float)
    beta = np.asarray(coef, dtype=float)
    risk = np.exp(x @ beta)
    wr = w * risk
    times = np.unique(t1[died])
    # Sums over the risk set {start < t <= stop} at each event day: those still in
    # (stop >= t) less those not yet in (start >= t).
    by_stop, by_start = np.argsort(t1), np.argsort(t0)

    def from_day(order: np.ndarray, ends: np.ndarray, values: np.ndarray) -> np.ndarray:
        # Sums from the last row back, in place in one copy (the same additions in the same
        # order as summing the reversed rows): the sum over rows from position k on is
        # ``backwards[n - 1 - k]``, and none past the end.
        backwards = values[order[::-1]]
        np.cumsum(backwards, axis=0, out=backwards)
        first = np.searchsorted(ends[order], times, side="left")
        out = np.zeros((len(times), values.shape[1]))
        inside = first < len(ends)
        out[inside] = backwards[len(ends) - 1 - first[inside]]
        return out

    weighted = np.column_stack([wr, wr[:, None] * x])
    in_risk_set = from_day(by_stop, t1, weighted) - from_day(by_start, t0, weighted)
    denom, a = in_risk_set[:, 0], in_risk_set[:, 1:]
    day = np.searchsorted(times, t1[died])
    deaths = np.bincount(day, minlength=len(times)).astype(float)
    e_denom = np.bincount(day, weights=wr[died], minlength=len(times))
    mean_weight = np.bincount(day, weights=w[died], minlength=len(times)) / deaths
    a2 = np.zeros_like(a)
    np.add.at(a2, day, wr[died][:, None] * x[died])
    p = x.shape[1]
    # Per event day: the sums over Efron's d steps of the hazard increments h_k and of
    # h_k times the risk-set means m_k, for everyone at risk, and with each step
    # down-weighted by 1 - k/d for those who died that day; and the mean of the m_k.
    hazard, hazard_mean = np.zeros(len(times)), np.zeros((len(times), p))
    dying_hazard, dying_mean = np.zeros(len(times)), np.zeros((len(times), p))
    mean_means = np.zeros((len(times), p))
    for j in range(len(times)):
        f = np.arange(deaths[j]) / deaths[j]
        d2 = denom[j] - f * e_denom[j]
        h = mean_weight[j] / d2
        m = (a[j][None, :] - f[:, None] * a2[j][None, :]) / d2[:, None]
        hazard[j], hazard_mean[j] = h.sum(), (h[:, None] * m).sum(axis=0)
        dying_hazard[j] = ((1 - f) * h).sum()
        dying_mean[j] = (((1 - f) * h)[:, None] * m).sum(axis=0)
        mean_means[j] = m.mean(axis=0)
    cum_hazard = np.concatenate([[0.0], np.cumsum(hazard)])
    cum_mean = np.vstack([np.zeros(p), np.cumsum(hazard_mean, axis=0)])
    lo, hi = np.searchsorted(times, t0, side="right"), np.searchsorted(times, t1, side="right")
    summed_hazard = cum_hazard[hi] - cum_hazard[lo]
    summed_mean = cum_mean[hi] - cum_mean[lo]
    # -risk (x h - m), worked in one array rather than three of the same size.
    residuals = x * summed_hazard[:, None]
    residuals -= summed_mean
    residuals *= -risk[:, None]
    del summed_mean
    # Those who died: Efron's down-weighting of their own day, and the observed term.
    xd = x[died]
    residuals[died] += risk[died][:, None] * (
        xd * (hazard[day] - dying_hazard[day])[:, None] - (hazard_mean[day] - dying_mean[day])
    ) + (xd - mean_means[day])
    values = np.asarray(clusters)
    # Whole numbers (the cohort's person codes) as they are; anything else by its text, as
    # before. Either way the clusters are numbered in order of first appearance, so the
    # sums below add in the same order.
    codes = (
        pd.factorize(values)[0]
        if values.dtype.kind in "iu"
        else pd.factorize(pd.Series(list(clusters)).astype(str))[0]
    )
    per_cluster = np.zeros((codes.max() + 1, p))
    np.add.at(per_cluster, codes, w[:, None] * residuals)
    v = np.asarray(naive_variance, dtype=float)
    return v @ (per_cluster.T @ per_cluster) @ v
