"""The reoffending cohort: one row per accepted referral, read in one query.

Time origin is the referral's received date; the event is the person's first
police-recorded domestic-abuse incident strictly after it. Only what was known
by the data cut-off (``as_of``) counts: milestones and incidents after it are
ignored, and referrals received on or after it have no follow-up yet.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from programme.platform import database

COHORT_SQL = """
WITH milestones AS (
    SELECT referral,
           min(occurred_on) FILTER (WHERE type = 'engaged') AS engaged_on,
           min(occurred_on) FILTER (WHERE type = 'completed') AS completed_on
    FROM referral_event
    WHERE type IN ('engaged', 'completed') AND occurred_on <= $1
    GROUP BY referral
), first_after AS (
    -- One join and GROUP BY, not a subquery probed once per referral.
    SELECT r.id AS referral, min(o.offence_date) AS reoffended_on
    FROM referral r JOIN reoffence o ON o.person = r.person
    WHERE r.received_on < $1 AND o.offence_date > r.received_on AND o.offence_date <= $1
    GROUP BY r.id
)
SELECT r.received_on, p.date_of_birth, p.gender, r.risk_level, r.prior_incidents,
       r.substance_misuse, r.mental_health, r.children_in_household, r.local_authority,
       a.name AS agency, m.engaged_on, m.completed_on, f.reoffended_on
FROM referral r
JOIN person p ON p.id = r.person
JOIN agency a ON a.id = r.agency
LEFT JOIN milestones m ON m.referral = r.id
LEFT JOIN first_after f ON f.referral = r.id
WHERE r.received_on < $1
"""


async def load(as_of: date) -> tuple[pd.DataFrame, int]:
    """The cohort as of the cut-off, and how many referrals have no follow-up yet."""
    async with database.connection() as connection:
        records = await connection.fetch(COHORT_SQL, as_of)
        excluded = await connection.fetchval(
            "SELECT count(*) FROM referral WHERE received_on >= $1", as_of
        )
    columns = [
        "received_on",
        "date_of_birth",
        "gender",
        "risk_level",
        "prior_incidents",
        "substance_misuse",
        "mental_health",
        "children_in_household",
        "local_authority",
        "agency",
        "engaged_on",
        "completed_on",
        "reoffended_on",
    ]
    frame = pd.DataFrame.from_records([tuple(r) for r in records], columns=columns)
    return frame, int(excluded)


def _days(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    delta = pd.to_datetime(later) - pd.to_datetime(earlier)
    return delta.dt.days.to_numpy(dtype=float)


def follow_up(frame: pd.DataFrame, horizon_days: int, as_of: date) -> pd.DataFrame:
    """Add duration (days), event (0/1), and days to engagement and completion.

    Each person is followed for min(horizon, as_of - received) days; a reoffence
    within that counts as the event, anything later is censored.
    """
    out = frame.copy()
    available = _days(pd.Series([as_of] * len(out), index=out.index), out["received_on"])
    limit = np.minimum(float(horizon_days), available)
    to_event = _days(out["reoffended_on"], out["received_on"])
    event = ~np.isnan(to_event) & (to_event <= limit)
    out["duration"] = np.where(event, to_event, limit)
    out["event"] = event.astype(int)
    out["days_to_engaged"] = _days(out["engaged_on"], out["received_on"])
    out["days_to_completed"] = _days(out["completed_on"], out["received_on"])
    born = pd.to_datetime(out["date_of_birth"])
    received = pd.to_datetime(out["received_on"])
    had_birthday = (received.dt.month > born.dt.month) | (
        (received.dt.month == born.dt.month) & (received.dt.day >= born.dt.day)
    )
    out["age_at_referral"] = received.dt.year - born.dt.year - (~had_birthday).astype(int)
    return out
