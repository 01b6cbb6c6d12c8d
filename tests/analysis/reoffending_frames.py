"""Cohorts built in memory, in the columns ``COHORT_SQL`` returns, for the pure analysis.

The database end of the analysis is tested in test_reoffending_analysis.py; these let a
test state exactly who reoffended when, and who lacks which detail, without one.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from analysis.schemas import BeforeAfter

AS_OF = date(2026, 6, 1)


def cohort(
    n: int = 200,
    *,
    seed: int = 1,
    missing_risk: float = 0.0,
    engaged_share: float = 0.5,
    days_available: int = 400,
    shortest_follow_up: int | None = None,
    hazard: float = 1 / 300,
) -> pd.DataFrame:
    """``n`` referrals followed ``shortest_follow_up`` to ``days_available`` days (by default
    all the latter), reoffending at a constant hazard."""
    rng = np.random.default_rng(seed)
    low = days_available if shortest_follow_up is None else shortest_follow_up
    available = rng.integers(low, days_available + 1, n)
    received = [AS_OF - timedelta(days=int(d)) for d in available]
    engaged = rng.random(n) < engaged_share
    days_to_engaged = np.where(engaged, rng.integers(10, 120, n), np.nan)
    reoffence = np.ceil(rng.exponential(1 / hazard, n))
    days_to_reoffence = np.where(reoffence <= available, reoffence, np.nan)
    risk = rng.choice(["standard", "medium", "high"], n).astype(object)
    risk[rng.random(n) < missing_risk] = None
    return pd.DataFrame(
        {
            "person": [f"person-{i}" for i in range(n)],
            "received_on": received,
            "date_of_birth": [date(1980, 1, 1)] * n,
            "gender": rng.choice(["male", "female"], n),
            "risk_level": risk,
            "prior_incidents": rng.integers(0, 5, n),
            "substance_misuse": rng.random(n) < 0.3,
            "mental_health": rng.random(n) < 0.3,
            "children_in_household": rng.random(n) < 0.5,
            "local_authority": "Sheffield",
            "agency": "South Yorkshire Police",
            "days_available": available,
            "days_to_engaged": days_to_engaged,
            "days_to_completed": np.full(n, np.nan),
            "days_to_reoffence": days_to_reoffence,
        }
    )


NO_BEFORE_AFTER = BeforeAfter(
    window_days=182,
    n=0,
    incidents_before=0,
    incidents_after=0,
    any_before=0,
    any_after=0,
    mcnemar_p=None,
)
