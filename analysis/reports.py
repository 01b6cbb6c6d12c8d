"""Contract-monitoring reports: the quarterly table and referral quality by agency.

Each report is one aggregate SQL query. Each column counts the events that
happened in the quarter (a person who started in Q2 may complete in Q4), as the
council's published table does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.proportions import wilson
from analysis.quarters import Quarter, quarter_sql, quarters_between
from programme.platform import database
from referrals.rules import ReturnReason

QUARTERLY_NOTES = [
    "Each column counts the events dated in that quarter: a person who started in one "
    "quarter may complete in a later one.",
    "referrals = accepted + returned (refused at the door: no consent, incomplete, inappropriate).",
    "Completion rate = completed / started over the range; engagement rate = of referrals "
    "whose initial contact succeeded in the range, the share that engaged (the agreed "
    "definition). 95% Wilson intervals.",
]
QUALITY_NOTES = [
    "Per agency and the quarter the referral was received in. Returned referrals are counted "
    "once per reason they failed, so reasons can add up to more than 'returned'.",
    "mean_quality_score: share of the useful optional details given, accepted referrals only.",
    "share_engaged: of the accepted referrals, the share that went on to engage (so far).",
]

QUARTERLY_COLUMNS = (
    "quarter",
    "referrals",
    "accepted",
    "returned",
    "contacted",
    "engaging",
    "started",
    "completed",
    "disengaged",
    "withdrawn",
    "closed",
)


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class QuarterlyReport:
    rows: list[dict[str, Any]]
    """One per quarter in the range, then 'Total'."""
    completion_rate: Rate
    """Completed / started, over the range (the progress report's 55%)."""
    engagement_rate: Rate
    """Of referrals whose initial contact succeeded in the range, the share that engaged."""


def _rate(numerator: int, denominator: int) -> Rate:
    if denominator == 0:
        return Rate(numerator, 0, None, None, None)
    result = wilson(min(numerator, denominator), denominator)
    return Rate(numerator, denominator, numerator / denominator, result.ci_low, result.ci_high)


# Built once from constants (the quarter expression), never from input: values are bound.
QUARTERLY_SQL = f"""
WITH happened AS (
    SELECT occurred_on AS day, type FROM referral_event
    WHERE occurred_on BETWEEN $1 AND $2
    UNION ALL
    SELECT received_on, 'returned' FROM returned_referral
    WHERE received_on BETWEEN $1 AND $2
), by_day AS (
    -- Count per day first, so the quarter label is worked out once per day,
    -- not once per event.
    SELECT day, type, count(*) AS n FROM happened GROUP BY 1, 2
), counted AS (
    SELECT {quarter_sql("day")} AS quarter,
           sum(n) FILTER (WHERE type IN ('accepted', 'returned'))::int AS referrals,
           sum(n) FILTER (WHERE type = 'accepted')::int AS accepted,
           sum(n) FILTER (WHERE type = 'returned')::int AS returned,
           sum(n) FILTER (WHERE type = 'contacted')::int AS contacted,
           sum(n) FILTER (WHERE type = 'engaged')::int AS engaging,
           sum(n) FILTER (WHERE type = 'started')::int AS started,
           sum(n) FILTER (WHERE type = 'completed')::int AS completed,
           sum(n) FILTER (WHERE type = 'disengaged')::int AS disengaged,
           sum(n) FILTER (WHERE type = 'withdrawn')::int AS withdrawn,
           sum(n) FILTER (WHERE type = 'closed')::int AS closed
    FROM by_day GROUP BY 1
), cohort AS (
    -- Referrals whose initial contact succeeded in the range, and which of them
    -- engaged: a join to the engaged referrals, hashed once.
    SELECT count(*) AS contacted, count(e.referral) AS engaged
    FROM referral_event c
    LEFT JOIN (SELECT DISTINCT referral FROM referral_event WHERE type = 'engaged') e
           ON e.referral = c.referral
    WHERE c.type = 'contacted' AND c.occurred_on BETWEEN $1 AND $2
)
SELECT q.label AS quarter,
       coalesce(referrals, 0) AS referrals, coalesce(accepted, 0) AS accepted,
       coalesce(returned, 0) AS returned, coalesce(counted.contacted, 0) AS contacted,
       coalesce(engaging, 0) AS engaging, coalesce(started, 0) AS started,
       coalesce(completed, 0) AS completed, coalesce(disengaged, 0) AS disengaged,
       coalesce(withdrawn, 0) AS withdrawn, coalesce(closed, 0) AS closed,
       cohort.contacted AS cohort_contacted, cohort.engaged AS cohort_engaged
FROM unnest($3::text[]) WITH ORDINALITY AS q(label, position)
LEFT JOIN counted ON counted.quarter = q.label
CROSS JOIN cohort
ORDER BY q.position
"""  # noqa: S608


async def quarterly(first: Quarter, last: Quarter) -> QuarterlyReport:
    quarters = quarters_between(first, last)
    async with database.connection() as connection:
        records = await connection.fetch(
            QUARTERLY_SQL, first.first_day, last.last_day, [q.label for q in quarters]
        )
    rows = [{column: record[column] for column in QUARTERLY_COLUMNS} for record in records]
    total: dict[str, Any] = {"quarter": "Total"}
    for column in QUARTERLY_COLUMNS[1:]:
        total[column] = sum(row[column] for row in rows)
    cohort = records[0] if records else None
    return QuarterlyReport(
        rows=[*rows, total],
        completion_rate=_rate(total["completed"], total["started"]),
        engagement_rate=_rate(
            cohort["cohort_engaged"] if cohort else 0, cohort["cohort_contacted"] if cohort else 0
        ),
    )


REASONS = tuple(reason.value for reason in ReturnReason)

QUALITY_SQL = f"""
WITH submissions AS (
    SELECT r.agency, r.received_on, true AS accepted, r.quality_score,
           '[]'::jsonb AS reasons,
           EXISTS (SELECT 1 FROM referral_event e
                   WHERE e.referral = r.id AND e.type = 'engaged') AS engaged
    FROM referral r WHERE r.received_on BETWEEN $1 AND $2
    UNION ALL
    SELECT agency, received_on, false, NULL, reasons, false
    FROM returned_referral WHERE received_on BETWEEN $1 AND $2
)
SELECT a.name AS agency, {quarter_sql("s.received_on")} AS quarter,
       min(s.received_on) AS first_day,
       count(*) AS received,
       count(*) FILTER (WHERE s.accepted) AS accepted,
       count(*) FILTER (WHERE NOT s.accepted) AS returned,
       {", ".join(f"count(*) FILTER (WHERE s.reasons ? '{r}') AS {r}" for r in REASONS)},
       avg(s.quality_score) AS mean_quality_score,
       count(*) FILTER (WHERE s.engaged) AS engaged
FROM submissions s JOIN agency a ON a.id = s.agency
GROUP BY 1, 2
ORDER BY 1, 3
"""  # noqa: S608


async def referral_quality(first: Quarter, last: Quarter) -> list[dict[str, Any]]:
    """Per agency and quarter: received, accepted, returned by reason, quality, engagement."""
    async with database.connection() as connection:
        records = await connection.fetch(QUALITY_SQL, first.first_day, last.last_day)
    rows = []
    for record in records:
        row = {k: record[k] for k in ("agency", "quarter", "received", "accepted", "returned")}
        row["reasons"] = {reason: record[reason] for reason in REASONS}
        mean = record["mean_quality_score"]
        row["mean_quality_score"] = None if mean is None else round(float(mean), 1)
        row["engaged"] = record["engaged"]
        row["share_engaged"] = (
            None if record["accepted"] == 0 else record["engaged"] / record["accepted"]
        )
        rows.append(row)
    return rows
