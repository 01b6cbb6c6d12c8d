"""National scale, the Schoenfeld experiment: lifelines' PH test, and the same test in linear time.

lifelines computes the scaled Schoenfeld residuals for its proportional-hazards
test by growing an array with ``np.append`` once per row (lifelines issue
#1067): quadratic in the rows. ``fast_schoenfeld_within_strata`` gives the same
residuals with cumulative sums and bincounts; ``vectorised_schoenfeld`` swaps
it in for the duration of a block; ``ph_scaling`` times lifelines' test as it
is on growing subsets of a cohort, extrapolates to the whole cohort, and checks
that the linear residuals give the same test statistics.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from harness import log
from lifelines import CoxPHFitter
from lifelines.fitters.coxph_fitter import SemiParametricPHFitter
from lifelines.statistics import proportional_hazard_test


def fast_schoenfeld_within_strata(
    self: Any, X: Any, T: Any, E: Any, weights: Any, entries: Any
) -> Any:
    """lifelines' ``_compute_schoenfeld_within_strata`` (Efron ties) without its loop.

    lifelines grows the residual array with ``np.append`` once per row, which
    copies the whole array each time: quadratic in the rows (lifelines issue
    #1067). The same sums with cumulative sums and bincounts: linear. The rows
    come sorted by time, as lifelines sorts them before calling this.
    """
    x = X.values
    e = E.values.astype(bool)
    t = T.values
    w = weights.values
    n, d = x.shape
    if not e.any():
        return np.zeros((n, d))
    phi = w * np.exp(x @ self.params_.values)
    phi_x = phi[:, None] * x
    # Risk set at a time: every row from the first one with that time onwards.
    risk_phi_all = np.cumsum(phi[::-1])[::-1]
    risk_phi_x_all = np.cumsum(phi_x[::-1], axis=0)[::-1]
    new_time = np.empty(n, dtype=bool)
    new_time[0] = True
    new_time[1:] = t[1:] != t[:-1]
    starts = np.flatnonzero(new_time)
    group = np.cumsum(new_time) - 1
    k = len(starts)
    risk_phi, risk_phi_x = risk_phi_all[starts], risk_phi_x_all[starts]
    ef = e.astype(float)
    ties = np.bincount(group, weights=ef, minlength=k)
    tie_phi = np.bincount(group, weights=phi * ef, minlength=k)
    tie_phi_x = np.column_stack(
        [np.bincount(group, weights=phi_x[:, j] * ef, minlength=k) for j in range(d)]
    )
    # Efron: the mean at a time with c tied events averages over l = 0..c-1.
    with_events = np.flatnonzero(ties > 0)
    c = ties[with_events].astype(np.int64)
    owner = np.repeat(np.arange(len(with_events)), c)
    l_index = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
    fraction = l_index / c[owner]
    g = with_events[owner]
    numerator = risk_phi_x[g] - fraction[:, None] * tie_phi_x[g]
    denominator = (risk_phi[g] - fraction * tie_phi[g]) * c[owner]
    part = numerator / denominator[:, None]
    mean = np.zeros((k, d))
    for j in range(d):
        mean[with_events, j] = np.bincount(owner, weights=part[:, j], minlength=len(with_events))
    return ef[:, None] * (x - mean[group])


@contextmanager
def vectorised_schoenfeld() -> Iterator[None]:
    """Within the block, lifelines computes Schoenfeld residuals the linear way."""
    original = SemiParametricPHFitter._compute_schoenfeld_within_strata
    SemiParametricPHFitter._compute_schoenfeld_within_strata = fast_schoenfeld_within_strata
    try:
        yield
    finally:
        SemiParametricPHFitter._compute_schoenfeld_within_strata = original


def ph_scaling(kept: Any, sizes: list[int], n_full: int) -> dict[str, Any]:
    """Time lifelines' PH test as it is on random subsets of the cohort; extrapolate.

    Also checks, on the smallest subset, that the linear residuals give the same
    test as lifelines' own.
    """
    covariates, durations, events = kept
    rng = np.random.default_rng(20261123)
    out: dict[str, Any] = {"points": []}
    sizes = sorted({size for size in sizes if size < n_full}) or [n_full]
    for position, size in enumerate(sizes):
        rows = np.sort(rng.choice(n_full, size=size, replace=False))
        data = covariates.iloc[rows].reset_index(drop=True)
        data = data.assign(_duration=durations[rows], _event=events[rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitter = CoxPHFitter().fit(data, "_duration", "_event", batch_mode=True)
            started = time.perf_counter()
            as_is = proportional_hazard_test(fitter, data, time_transform="rank")
            seconds = time.perf_counter() - started
            if position == 0:
                with vectorised_schoenfeld():
                    started = time.perf_counter()
                    linear = proportional_hazard_test(fitter, data, time_transform="rank")
                    out["linear_seconds_at_smallest"] = time.perf_counter() - started
                a = as_is.summary[["test_statistic", "p"]].to_numpy()
                b = linear.summary[["test_statistic", "p"]].to_numpy()
                out["max_difference_linear_vs_lifelines"] = float(np.abs(a - b).max())
                if not np.allclose(a, b, rtol=1e-9, atol=1e-12):
                    raise RuntimeError(f"linear residuals change the PH test: {a} vs {b}")
        out["points"].append({"rows": size, "events": int(events[rows].sum()), "seconds": seconds})
        log(f"  PH test as is on {size:,} rows: {seconds:.1f}s")
    points = out["points"]
    if len(points) >= 2:
        (n1, t1), (n2, t2) = [(p["rows"], p["seconds"]) for p in points[-2:]]
        exponent = float(np.log(t2 / t1) / np.log(n2 / n1))
    else:
        exponent = 2.0
    out["exponent"] = exponent
    last = points[-1]
    out["extrapolated_seconds"] = last["seconds"] * (n_full / last["rows"]) ** exponent
    return out
