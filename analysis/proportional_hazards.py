"""The proportional-hazards check R's ``survival`` 3.x makes (``cox.zph``): a score test.

For each term it asks whether letting the coefficient change with a function
of time, ``beta + gamma * g(t)``, would improve the fitted Cox model. The test
is the score test of ``gamma = 0`` at the fitted ``beta``: the score of the
time-interaction terms, against the full information matrix of ``beta`` and
``gamma`` together (Efron's handling of tied event times, as the fit). Per
term and globally, chi-squared with as many degrees of freedom as the term has
columns.

Two things matter for honest figures and are why this exists beside
lifelines' ``proportional_hazard_test``:

- **Tied times are ranked alike.** ``g(t)`` is computed from the times
  themselves (average ranks over everyone for ``rank``; one minus the
  Kaplan-Meier estimate just before ``t`` for ``km``, R's default), so people
  who reoffend on the same day get the same value whatever order the rows
  arrive in. lifelines ranks event times in arrival order.
- **Everyone is used, exactly.** The sums run over risk sets in one sorted
  pass, vectorised, so a million people cost a few passes over the arrays
  rather than a sample.

Checked against R 3.5's ``cox.zph(fit, transform=...)`` on the Rossi
recidivism model, a model with many ties and a stratified model
(tests/analysis/test_proportional_hazards.py, R's output pasted there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, rankdata

TRANSFORMS = ("km", "rank", "identity", "log")


@dataclass(frozen=True)
class TermTest:
    name: str
    chisq: float
    df: int
    p: float


@dataclass(frozen=True)
class PHTest:
    """Per-term and global score tests of proportional hazards."""

    transform: str
    terms: tuple[TermTest, ...]
    global_test: TermTest
    score: tuple[float, ...] = ()
    """Per column, the score of the time interaction: the sum over deaths of the centred
    g(t) times the death's Schoenfeld residual (``schoenfeld_residuals``)."""


def time_transform(durations: np.ndarray, events: np.ndarray, transform: str) -> np.ndarray:
    """g(t) for everyone, before centring: equal times always get equal values."""
    if transform == "identity":
        return durations.astype(float)
    if transform == "log":
        return np.log(durations.astype(float))
    if transform == "rank":
        return rankdata(durations, method="average")
    if transform == "km":
        # One minus the Kaplan-Meier estimate (everyone, one group) just before t.
        _, index = np.unique(durations, return_inverse=True)
        at_risk = len(durations) - np.concatenate(([0], np.cumsum(np.bincount(index))[:-1]))
        deaths = np.bincount(index, weights=events.astype(float))
        survival = np.cumprod(1.0 - deaths / at_risk)
        before = np.concatenate(([1.0], survival[:-1]))
        return 1.0 - before[index]
    raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}")


def _group_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts, axis=0)


def ph_test(
    covariates: np.ndarray,
    durations: np.ndarray,
    events: np.ndarray,
    coefficients: np.ndarray,
    *,
    names: Sequence[str],
    terms: Mapping[str, Sequence[int]] | None = None,
    strata: np.ndarray | None = None,
    transform: str = "km",
) -> PHTest:
    """The score test of proportional hazards for a Cox model fitted with Efron ties.

    ``covariates`` is n x p (as fitted), ``coefficients`` the fitted p values.
    ``terms`` groups columns into terms (a dummy-coded factor is one term with
    several degrees of freedom); by default each column is its own term.
    """
    x = np.asarray(covariates, dtype=float)
    t = np.asarray(durations, dtype=float)
    d = np.asarray(events, dtype=float)
    n, p = x.shape
    beta = np.asarray(coefficients, dtype=float)
    stratum = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
    if terms is None:
        terms = {name: [j] for j, name in enumerate(names)}

    g = time_transform(t, d, transform)
    g = g - g[d == 1].mean()
    # Centring changes nothing in the test and keeps the sums well conditioned.
    x = x - x.mean(axis=0)
    eta = x @ beta
    risk = np.exp(eta - eta.max())

    # Risk sets, one sorted pass: by stratum, then time; a group is one time in one stratum.
    order = np.lexsort((t, stratum))
    x, t, d, g, risk, stratum = x[order], t[order], d[order], g[order], risk[order], stratum[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (t[1:] != t[:-1]) | (stratum[1:] != stratum[:-1])
    starts = np.flatnonzero(new_group)
    group_stratum = stratum[starts]
    group_g = g[starts]

    pairs = [(a, b) for a in range(p) for b in range(a + 1)]
    rx = risk[:, None] * x
    # Filled in place, column by column: no n x p(p+1)/2 temporaries beside it.
    rxx = np.empty((n, len(pairs)))
    for k, (a, b) in enumerate(pairs):
        np.multiply(rx[:, a], x[:, b], out=rxx[:, k])
    # Sums over each group (everyone), then over its deaths alone (a few percent of the
    # rows); the censored are the difference. D: deaths, C: censored.
    died = np.flatnonzero(d == 1)
    owner = (np.cumsum(new_group) - 1)[died]
    first = np.flatnonzero(np.diff(owner, prepend=-1))
    groups_with_deaths = owner[first]

    def death_sums(values: np.ndarray) -> np.ndarray:
        totals = np.zeros((len(starts), *values.shape[1:]))
        totals[groups_with_deaths] = _group_sums(values[died], first)
        return totals

    d0, d1, d2 = death_sums(risk), death_sums(rx), death_sums(rxx)
    c0 = _group_sums(risk, starts) - d0
    c1 = _group_sums(rx, starts) - d1
    c2 = _group_sums(rxx, starts) - d2
    del rxx
    deaths = death_sums(np.ones(n))
    death_x = death_sums(x)

    # Everyone in the same stratum with a later time is at risk too.
    def later(values: np.ndarray) -> np.ndarray:
        totals = np.zeros_like(values)
        for s in np.unique(group_stratum):
            rows = np.flatnonzero(group_stratum == s)
            block = values[rows]
            from_end = np.cumsum(block[::-1], axis=0)[::-1]
            totals[rows] = from_end - block
        return totals

    b0 = later(d0 + c0) + c0
    b1 = later(d1 + c1) + c1
    b2 = later(d2 + c2) + c2

    # Efron: with k tied deaths, k steps in which the deaths count k/k, ..., 1/k.
    with_deaths = np.flatnonzero(deaths > 0)
    counts = deaths[with_deaths].astype(np.int64)
    step_group = np.repeat(with_deaths, counts)
    step = np.concatenate([np.arange(1, k + 1) for k in counts]) / np.repeat(counts, counts)
    denom = b0[step_group] + step * d0[step_group]
    mean = (b1[step_group] + step[:, None] * d1[step_group]) / denom[:, None]
    gs = group_g[step_group]

    u = death_x[with_deaths].T @ group_g[with_deaths] - mean.T @ gs
    # sum over steps of (c / denom - mean mean'), weighted by 1, g and g^2.
    weight0 = np.bincount(step_group, weights=1.0 / denom, minlength=len(starts))
    weight1 = np.bincount(step_group, weights=step / denom, minlength=len(starts))
    information = np.zeros((2 * p, 2 * p))
    for block, power in (((slice(0, p), slice(0, p)), 0), ((slice(0, p), slice(p, 2 * p)), 1),
                         ((slice(p, 2 * p), slice(p, 2 * p)), 2)):  # fmt: skip
        gw = group_g**power
        second_flat = (b2 * (weight0 * gw)[:, None]).sum(axis=0) + (
            d2 * (weight1 * gw)[:, None]
        ).sum(axis=0)
        second = np.zeros((p, p))
        for k, (a, b) in enumerate(pairs):
            second[a, b] = second[b, a] = second_flat[k]
        gp = gs**power
        information[block] = second - (mean * gp[:, None]).T @ mean
    information[p:, :p] = information[:p, p:].T

    def score_test(columns: Sequence[int]) -> tuple[float, int]:
        keep = [*range(p), *(p + j for j in columns)]
        score = np.concatenate([np.zeros(p), u[list(columns)]])
        value = float(score @ np.linalg.solve(information[np.ix_(keep, keep)], score))
        return value, len(columns)

    results = []
    for name, columns in terms.items():
        value, df = score_test(list(columns))
        results.append(TermTest(name, value, df, float(chi2.sf(value, df))))
    value, df = score_test(list(range(p)))
    return PHTest(
        transform=transform,
        terms=tuple(results),
        global_test=TermTest("GLOBAL", value, df, float(chi2.sf(value, df))),
        score=tuple(float(value) for value in u),
    )


def schoenfeld_residuals(
    covariates: np.ndarray,
    durations: np.ndarray,
    events: np.ndarray,
    coefficients: np.ndarray,
    *,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """Schoenfeld residuals (Efron ties) for everyone, in the order given: n x p, zero for
    the censored.

    A death's residual is its covariates less the risk-weighted mean of its risk set;
    with k deaths tied on one day, Efron's k steps each take their share of those
    deaths out of the risk set, and each of the k deaths gets the average of the k
    step means (as R's ``residuals(fit, "schoenfeld")`` and lifelines do). One
    sorted pass, so a million people cost a few passes over the arrays (lifelines grows
    its result one row at a time: quadratic, issue #1067). Weighted by g(t) and summed,
    these are the score ``ph_test`` tests.
    """
    x = np.asarray(covariates, dtype=float)
    t = np.asarray(durations, dtype=float)
    d = np.asarray(events, dtype=float)
    n, p = x.shape
    beta = np.asarray(coefficients, dtype=float)
    stratum = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
    # Centring changes no residual and keeps exp() and the sums well conditioned.
    centred = x - x.mean(axis=0)
    eta = centred @ beta
    risk = np.exp(eta - eta.max())

    order = np.lexsort((t, stratum))
    xs, ts, ds, rs, ss = centred[order], t[order], d[order], risk[order], stratum[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
    starts = np.flatnonzero(new_group)
    group = np.cumsum(new_group) - 1
    # The risk set of a day: everyone in its stratum from that day on (sums from the
    # stratum's end, read at each day's first row).
    new_stratum = np.ones(n, dtype=bool)
    new_stratum[1:] = ss[1:] != ss[:-1]
    stratum_end = np.append(np.flatnonzero(new_stratum)[1:], n)[np.cumsum(new_stratum) - 1]
    weighted = np.column_stack([rs, rs[:, None] * xs])
    from_end = np.vstack([np.cumsum(weighted[::-1], axis=0)[::-1], np.zeros(p + 1)])
    at_risk = (from_end[:-1] - from_end[stratum_end])[starts]
    tied = _group_sums(weighted * ds[:, None], starts)
    deaths = _group_sums(ds, starts)

    with_deaths = np.flatnonzero(deaths > 0)
    counts = deaths[with_deaths].astype(np.int64)
    owner = np.repeat(np.arange(len(with_deaths)), counts)
    step = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) / counts[owner]
    g = with_deaths[owner]
    sums = at_risk[g] - step[:, None] * tied[g]
    step_means = sums[:, 1:] / sums[:, :1]
    mean = np.zeros((len(starts), p))
    mean[with_deaths] = _group_sums(step_means, np.cumsum(counts) - counts) / counts[:, None]

    sorted_residuals = ds[:, None] * (xs - mean[group])
    residuals = np.empty_like(sorted_residuals)
    residuals[order] = sorted_residuals
    return residuals


APPROXIMATE_TRANSFORMS = ("km", "identity", "log")


def approximate_ph_test(
    covariates: np.ndarray,
    durations: np.ndarray,
    events: np.ndarray,
    coefficients: np.ndarray,
    variance: np.ndarray,
    *,
    names: Sequence[str],
    strata: np.ndarray | None = None,
    transform: str = "km",
) -> tuple[TermTest, ...]:
    """The older test on scaled Schoenfeld residuals (R's ``cox.zph`` before survival 3.0,
    and lifelines' ``proportional_hazard_test``), per column, on everyone.

    It replaces each death's information by the average (the model's variance times
    the number of deaths), so it is an approximation of ``ph_test``'s score test; it
    is here to compare with lifelines and to check the residuals on all rows, not to
    publish. Transforms as lifelines': ``km`` is one minus the Kaplan-Meier estimate
    at t (R 3's is just before t); lifelines' ``rank`` orders tied days by row order,
    so it is not offered. Per column only: lifelines gives no global test.
    """
    if transform not in APPROXIMATE_TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(APPROXIMATE_TRANSFORMS)}")
    t = np.asarray(durations, dtype=float)
    d = np.asarray(events, dtype=float)
    died = d == 1
    v = np.asarray(variance, dtype=float)
    residuals = schoenfeld_residuals(covariates, t, d, coefficients, strata=strata)[died]
    total = died.sum()
    scaled = total * residuals @ v
    if transform == "km":
        g = time_transform(t, d, "km")
        # At t, not just before it: the step at t taken (lifelines' KaplanMeierFitter).
        _, index = np.unique(t, return_inverse=True)
        at_risk = len(t) - np.concatenate(([0], np.cumsum(np.bincount(index))[:-1]))
        step = 1.0 - np.bincount(index, weights=d) / at_risk
        g = 1.0 - (1.0 - g) * step[index]
    else:
        g = time_transform(t, d, transform)
    g = g[died] - g[died].mean()
    statistic = (g @ scaled) ** 2 / (total * np.diag(v) * (g @ g))
    return tuple(
        TermTest(name, float(value), 1, float(chi2.sf(value, 1)))
        for name, value in zip(names, statistic, strict=True)
    )
