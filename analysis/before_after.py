"""Police-recorded incidents in equal windows before and after referral.

A crude comparison, reported because commissioners ask for it: referrals
follow an incident, so incidents are at a peak just before referral and would
fall afterwards even with no programme at all (regression to the mean). The
survival analysis is the honest measure; this shows the raw counts beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from scipy.stats import binomtest

from programme.platform import database

BEFORE_AFTER_SQL = """
SELECT count(*) FILTER (WHERE before > 0) AS any_before,
       count(*) FILTER (WHERE after > 0) AS any_after,
       count(*) FILTER (WHERE before > 0 AND after = 0) AS stopped,
       count(*) FILTER (WHERE before = 0 AND after > 0) AS started,
       coalesce(sum(before), 0)::int AS incidents_before,
       coalesce(sum(after), 0)::int AS incidents_after,
       count(*) AS n
FROM (
    SELECT r.id,
           count(o.id) FILTER (WHERE o.offence_date >= r.received_on - $2::int
                                 AND o.offence_date < r.received_on) AS before,
           count(o.id) FILTER (WHERE o.offence_date > r.received_on
                                 AND o.offence_date <= r.received_on + $2::int) AS after
    FROM referral r
    LEFT JOIN reoffence o ON o.person = r.person
    WHERE r.received_on <= $1
    GROUP BY r.id
) windows
"""


@dataclass(frozen=True)
class BeforeAfter:
    window_days: int
    n: int
    """Referrals whose whole after-window ends by the data cut-off."""
    incidents_before: int
    incidents_after: int
    any_before: int
    any_after: int
    mcnemar_p: float | None
    """Exact McNemar test of 'any incident' before against after (paired)."""


async def before_after(window_days: int, as_of: date) -> BeforeAfter:
    last_received = as_of - timedelta(days=window_days)
    async with database.connection() as connection:
        row = await connection.fetchrow(BEFORE_AFTER_SQL, last_received, window_days)
    discordant = row["stopped"] + row["started"]
    p = None if discordant == 0 else float(binomtest(row["stopped"], discordant, 0.5).pvalue)
    return BeforeAfter(
        window_days=window_days,
        n=row["n"],
        incidents_before=row["incidents_before"],
        incidents_after=row["incidents_after"],
        any_before=row["any_before"],
        any_after=row["any_after"],
        mcnemar_p=p,
    )
