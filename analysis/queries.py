"""Every SQL statement of the reports and the reoffending analysis.

Voided lifecycle steps (``referral_event.voided_at`` set) are mistakes kept for
the record: every statement here reads only the steps that still count.

Built once from constants (the quarter expression, the lifecycle's statuses),
never from input: values are always bound as ``$n`` parameters.
"""

from __future__ import annotations

from outcomes.tables import Behaviour
from programme.platform.quarters import quarter_sql
from referrals.rules import ReturnReason, Status

COHORT_SQL = f"""
WITH milestones AS (
    SELECT referral,
           min(occurred_on) FILTER (WHERE type = '{Status.engaged}') AS engaged_on,
           min(occurred_on) FILTER (WHERE type = '{Status.completed}') AS completed_on
    FROM referral_event
    WHERE type IN ('{Status.engaged}', '{Status.completed}') AND occurred_on <= $1
      AND voided_at IS NULL
    GROUP BY referral
), first_after AS (
    -- One join and GROUP BY, not a subquery probed once per referral.
    SELECT r.id AS referral, min(o.offence_date) AS reoffended_on
    FROM referral r JOIN reoffence o ON o.person = r.person
    WHERE r.received_on < $1 AND o.offence_date > r.received_on AND o.offence_date <= $1
    GROUP BY r.id
)
-- Days are counted here, as whole days (date - date is an integer in PostgreSQL),
-- so no date the database can hold ever becomes an out-of-range timestamp.
SELECT r.person, r.received_on, p.date_of_birth, p.gender, r.risk_level, r.prior_incidents,
       r.substance_misuse, r.mental_health, r.children_in_household, r.local_authority,
       a.name AS agency,
       $1 - r.received_on AS days_available,
       m.engaged_on - r.received_on AS days_to_engaged,
       m.completed_on - r.received_on AS days_to_completed,
       f.reoffended_on - r.received_on AS days_to_reoffence
FROM referral r
JOIN person p ON p.id = r.person
JOIN agency a ON a.id = r.agency
LEFT JOIN milestones m ON m.referral = r.id
LEFT JOIN first_after f ON f.referral = r.id
WHERE r.received_on < $1
-- A fixed order: the fits add the same numbers in the same order whatever the
-- table's physical order (after a restore, a VACUUM FULL), so near-tied risk scores
-- rank the same way and the concordance holds still to the last bit.
ORDER BY r.id
"""  # noqa: S608

COHORT_COLUMNS = (
    "person",
    "born_year",
    "born_month_day",
    "received_year",
    "received_month_day",
    "gender",
    "risk_level",
    "prior_incidents",
    "substance_misuse",
    "mental_health",
    "children_in_household",
    "local_authority",
    "agency",
    "days_available",
    "days_to_engaged",
    "days_to_completed",
    "days_to_reoffence",
)
"""What ``COHORT_COPY_SQL`` sends, in order: the cohort with each date given as the two
whole numbers the age rule takes (``referrals.rules.whole_years``)."""


COHORT_COPY_SQL = """
SELECT c.referral, c.person,
       c.agency,
       coalesce(hashtextextended(c.gender, 0), 0) AS gender,
       coalesce(hashtextextended(c.risk_level, 0), 0) AS risk_level,
       coalesce(hashtextextended(c.local_authority, 0), 0) AS local_authority,
       coalesce(c.born_year, 0) AS born_year, coalesce(c.born_month_day, 0) AS born_month_day,
       coalesce(c.received_year, 0) AS received_year,
       coalesce(c.received_month_day, 0) AS received_month_day,
       coalesce(c.prior_incidents, 0) AS prior_incidents,
       $1 - c.received_on AS days_available,
       CASE WHEN c.engaged_on <= $1 THEN c.engaged_on - c.received_on ELSE 0 END
           AS days_to_engaged,
       CASE WHEN c.completed_on <= $1 THEN c.completed_on - c.received_on ELSE 0 END
           AS days_to_completed,
       CASE WHEN c.reoffended_on <= $1 THEN c.reoffended_on - c.received_on ELSE 0 END
           AS days_to_reoffence,
       coalesce(c.substance_misuse::int, 2)::int2 AS substance_misuse,
       coalesce(c.mental_health::int, 2)::int2 AS mental_health,
       coalesce(c.children_in_household::int, 2)::int2 AS children_in_household,
       (c.born_year IS NULL)::int + 2 * (c.born_month_day IS NULL)::int
       + 4 * (c.received_year IS NULL)::int + 8 * (c.received_month_day IS NULL)::int
       + 16 * (c.prior_incidents IS NULL)::int
       + 32 * ((c.engaged_on <= $1) IS NOT TRUE)::int
       + 64 * ((c.completed_on <= $1) IS NOT TRUE)::int
       + 128 * ((c.reoffended_on <= $1) IS NOT TRUE)::int
       + 256 * (c.gender IS NULL)::int + 512 * (c.risk_level IS NULL)::int
       + 1024 * (c.local_authority IS NULL)::int AS missing
FROM reoffending_cohort c
WHERE c.received_on < $1
"""
"""The cohort as ``COPY ... (FORMAT binary)`` sends it (decoded by ``analysis.cohort_read``),
read from ``reoffending_cohort`` (one row per referral, kept current by triggers: migration
``analysis_2026_11_27t20_15_00``) rather than worked out from every event and incident on
each call.

The table keeps each referral's first engagement, completion and incident after it
whenever they happened; the first of them on or before the cut-off is that first date
if it is on or before the cut-off, and none otherwise, so the cut-off applies here.

Every field is sent, none NULL, so every row has the same length and a million of them
decode as one numpy record array, with no text to parse: what is missing is a bit in
``missing`` (in ``cohort_read.NULLABLE``'s order), yes/no fields are 0, 1 or 2 (not
recorded), the three few-valued texts come as a 64-bit hash, named from one row holding
each (``COHORT_NAMES_SQL``). No ``ORDER BY``: walking the primary key for it read the heap
at random (3.6 s inside PostgreSQL at a million); the rows are put in referral order in
numpy (``cohort_read.referral_order``), the order the fits need to add the same numbers
the same way. No join to ``agency``, nor a look-up in a list of them: each cost a look-up
per row (0.4 s at a million for the list); the agency's id is named in numpy."""

COHORT_NAMES_SQL = """
SELECT referral, gender, risk_level, local_authority,
       hashtextextended(gender, 0) AS gender_hash,
       hashtextextended(risk_level, 0) AS risk_level_hash,
       hashtextextended(local_authority, 0) AS local_authority_hash
FROM reoffending_cohort WHERE referral = ANY($1::uuid[])
"""
"""The text behind each hash ``COHORT_COPY_SQL`` sent, from one row holding it (read in the
same snapshot). Two different values would need the same 64-bit hash to be confused:
about one chance in 10^14 for a few hundred local authorities."""

AGENCIES_SQL = "SELECT id, name FROM agency"

ONE_SNAPSHOT_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
"""Every statement of the transaction after this reads the data as it was at its first."""


BEFORE_AFTER_SQL = """
SELECT count(*) FILTER (WHERE before > 0) AS any_before,
       count(*) FILTER (WHERE after > 0) AS any_after,
       count(*) FILTER (WHERE before > 0 AND after = 0) AS stopped,
       count(*) FILTER (WHERE before = 0 AND after > 0) AS started,
       coalesce(sum(before), 0)::int AS incidents_before,
       coalesce(sum(after), 0)::int AS incidents_after,
       (SELECT count(*) FROM reoffending_cohort WHERE received_on <= $1) AS n
FROM (
    SELECT r.referral,
           count(*) FILTER (WHERE o.offence_date < r.received_on) AS before,
           count(*) FILTER (WHERE o.offence_date > r.received_on) AS after
    -- The cohort table's person and received date, the referral's own (one row each,
    -- kept by triggers), read from its narrow rows rather than the referral's wide ones.
    FROM reoffending_cohort r
    JOIN reoffence o ON o.person = r.person
    WHERE r.received_on <= $1
      AND o.offence_date >= r.received_on - $2::int AND o.offence_date <= r.received_on + $2::int
      AND o.offence_date <> r.received_on
    GROUP BY r.referral
) windows
"""
"""Incidents in the windows before and after each referral whose after-window has ended.
Only referrals with an incident in a window are grouped (a referral with none adds
nothing but to ``n``, counted apart): grouping every referral, most with no incident,
spilled its hash table to disk (2 s at a million)."""

# Built once from constants (the quarter expression), never from input: values are bound.
QUARTERLY_SQL = f"""
WITH happened AS (
    SELECT occurred_on AS day, type FROM referral_event
    WHERE occurred_on BETWEEN $1 AND $2 AND voided_at IS NULL
    UNION ALL
    -- A return a later submission replaced (referrals.services.replace_earlier_returns)
    -- was an attempt, not a referral: the person is counted once.
    SELECT received_on, 'returned' FROM returned_referral
    WHERE received_on BETWEEN $1 AND $2 AND NOT replaced
), by_day AS (
    -- Count per day first, so the quarter label is worked out once per day,
    -- not once per event.
    SELECT day, type, count(*) AS n FROM happened GROUP BY 1, 2
), counted AS (
    SELECT {quarter_sql("day")} AS quarter,
           sum(n) FILTER (WHERE type IN ('{Status.accepted}', 'returned'))::int AS referrals,
           sum(n) FILTER (WHERE type = '{Status.accepted}')::int AS accepted,
           sum(n) FILTER (WHERE type = 'returned')::int AS returned,
           sum(n) FILTER (WHERE type = '{Status.contacted}')::int AS contacted,
           sum(n) FILTER (WHERE type = '{Status.engaged}')::int AS engaging,
           sum(n) FILTER (WHERE type = '{Status.started}')::int AS started,
           sum(n) FILTER (WHERE type = '{Status.completed}')::int AS completed,
           sum(n) FILTER (WHERE type = '{Status.disengaged}')::int AS disengaged,
           sum(n) FILTER (WHERE type = '{Status.withdrawn}')::int AS withdrawn,
           sum(n) FILTER (WHERE type = '{Status.closed}')::int AS closed
    FROM by_day GROUP BY 1
), cohort AS (
    -- Referrals whose initial contact succeeded in the range, and which of them
    -- engaged: a join to the engaged referrals, hashed once.
    SELECT count(*) AS contacted, count(e.referral) AS engaged
    FROM referral_event c
    LEFT JOIN (SELECT DISTINCT referral FROM referral_event
               WHERE type = '{Status.engaged}' AND voided_at IS NULL) e
           ON e.referral = c.referral
    WHERE c.type = '{Status.contacted}' AND c.occurred_on BETWEEN $1 AND $2
      AND c.voided_at IS NULL
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

REASONS = tuple(reason.value for reason in ReturnReason)

NO_FOLLOW_UP_YET = "SELECT count(*) FROM referral WHERE received_on >= $1"

FEEDBACK_SQL = f"""
WITH by_day AS (
    -- Counted per day and stage first, so the quarter label is worked out once per day,
    -- not once per response (at 600,000 responses it was two thirds of the time).
    SELECT collected_on, stage, count(*) AS responded,
           count(*) FILTER (WHERE behaviour IN ('{Behaviour.stopped}', '{Behaviour.reduced}'))
               AS improved
    FROM feedback
    WHERE collected_on BETWEEN $1 AND $2
    GROUP BY 1, 2
)
SELECT {quarter_sql("collected_on")} AS quarter, stage,
       min(collected_on) AS first_day,
       sum(responded)::bigint AS responded,
       sum(improved)::bigint AS improved
FROM by_day
GROUP BY 1, 2
"""  # noqa: S608

PROGRAMME_WEEKS_SQL = """
SELECT weeks FROM programme WHERE name = $1
"""

# --- the reoffending analysis's results cache (migration analysis_2026_11_27t17_40_00) ---

DATA_VERSION_SQL = "SELECT coalesce(sum(changes), 0)::bigint FROM analysis_data_change"
"""Moves whenever a write to anything the analysis reads commits; never goes back."""

CACHED_RESULT_SQL = "SELECT result FROM analysis_result WHERE data_version = $1 AND request = $2"

STORE_RESULT_SQL = """
WITH stale AS (DELETE FROM analysis_result WHERE data_version < $1)
INSERT INTO analysis_result (data_version, request, result) VALUES ($1, $2, $3)
ON CONFLICT (data_version, request) DO NOTHING
"""
"""Keep the result, and drop every result of older data (never served again)."""

LATEST_EXTRACT_SQL = """
SELECT max(extracted_on) FROM incident_extract
"""

# --- the reports by agency or by local authority ---

NOT_KEPT = "not kept (returned referrals)"
"""A returned referral keeps nothing about the person, so no local authority either."""

_GROUPS = {
    # (the group of an accepted referral, the group of a returned one)
    "agency": ("a.name", "a.name"),
    "local_authority": ("coalesce(r.local_authority, 'not recorded')", f"'{NOT_KEPT}'"),
}


def _quality(by: str, per_quarter: bool) -> str:
    """Referral quality per agency or local authority, and per quarter or over the range.

    Counted per group and day first (the engaged referrals hashed once, not probed once
    per referral; the quarter label worked out once per day, not once per submission):
    at a million referrals the per-row form took 2.5 times a bare aggregate. The mean
    score is the sum over the count, which is how ``avg`` works it out, to the digit."""
    area = {"agency": ("NULL::text", "NULL::text"), "local_authority": _GROUPS[by]}[by]
    key = "a.name AS agency" if by == "agency" else "s.area AS local_authority"
    quarter = quarter_sql("s.received_on") if per_quarter else "'Total'"
    no_reasons = ", ".join(f"0 AS {r}" for r in REASONS)
    reasons = ", ".join(f"count(*) FILTER (WHERE reasons ? '{r}') AS {r}" for r in REASONS)
    summed = ", ".join(f"sum(s.{r})::bigint AS {r}" for r in REASONS)
    return f"""
WITH engaged AS (
    SELECT DISTINCT referral FROM referral_event
    WHERE type = '{Status.engaged}' AND voided_at IS NULL
), submissions AS (
    SELECT r.agency, {area[0]} AS area, r.received_on, count(*) AS received,
           count(*) AS accepted, 0 AS returned, {no_reasons},
           sum(r.quality_score) AS score_sum, count(r.quality_score) AS scored,
           count(e.referral) AS engaged
    FROM referral r LEFT JOIN engaged e ON e.referral = r.id
    WHERE r.received_on BETWEEN $1 AND $2
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT agency, {area[1]}, received_on, count(*), 0, count(*), {reasons}, NULL, 0, 0
    FROM returned_referral
    WHERE received_on BETWEEN $1 AND $2 AND NOT replaced
    GROUP BY 1, 2, 3
)
SELECT {key}, {quarter} AS quarter,
       min(s.received_on) AS first_day,
       sum(s.received)::bigint AS received,
       sum(s.accepted)::bigint AS accepted,
       sum(s.returned)::bigint AS returned,
       {summed},
       sum(s.score_sum)::numeric / nullif(sum(s.scored), 0)::numeric AS mean_quality_score,
       sum(s.engaged)::bigint AS engaged
FROM submissions s JOIN agency a ON a.id = s.agency
GROUP BY 1, 2
ORDER BY 1, 3
"""  # noqa: S608


QUALITY_SQL = _quality("agency", per_quarter=True)
"""Referral quality per agency and quarter: received, accepted, returned by reason, mean
quality score, engaged."""
QUALITY_BY_LOCAL_AUTHORITY_SQL = _quality("local_authority", per_quarter=True)
"""Referral quality per local authority: the same statement, keyed by area."""
QUALITY_OVER_RANGE_SQL = {by: _quality(by, per_quarter=False) for by in _GROUPS}
"""Referral quality over the whole range, one row per agency or local authority."""


def _quarterly_by(accepted: str, returned: str) -> str:
    return f"""
WITH happened AS (
    SELECT {accepted} AS grp, e.occurred_on AS day, e.type
    FROM referral_event e JOIN referral r ON r.id = e.referral JOIN agency a ON a.id = r.agency
    WHERE e.occurred_on BETWEEN $1 AND $2 AND e.voided_at IS NULL
    UNION ALL
    SELECT {returned}, rr.received_on, 'returned'
    FROM returned_referral rr JOIN agency a ON a.id = rr.agency
    WHERE rr.received_on BETWEEN $1 AND $2 AND NOT rr.replaced
), by_day AS (
    SELECT grp, day, type, count(*) AS n FROM happened GROUP BY 1, 2, 3
)
SELECT grp, {quarter_sql("day")} AS quarter,
       coalesce(sum(n) FILTER (WHERE type IN ('{Status.accepted}', 'returned')), 0)::int
           AS referrals,
       coalesce(sum(n) FILTER (WHERE type = '{Status.accepted}'), 0)::int AS accepted,
       coalesce(sum(n) FILTER (WHERE type = 'returned'), 0)::int AS returned,
       coalesce(sum(n) FILTER (WHERE type = '{Status.contacted}'), 0)::int AS contacted,
       coalesce(sum(n) FILTER (WHERE type = '{Status.engaged}'), 0)::int AS engaging,
       coalesce(sum(n) FILTER (WHERE type = '{Status.started}'), 0)::int AS started,
       coalesce(sum(n) FILTER (WHERE type = '{Status.completed}'), 0)::int AS completed,
       coalesce(sum(n) FILTER (WHERE type = '{Status.disengaged}'), 0)::int AS disengaged,
       coalesce(sum(n) FILTER (WHERE type = '{Status.withdrawn}'), 0)::int AS withdrawn,
       coalesce(sum(n) FILTER (WHERE type = '{Status.closed}'), 0)::int AS closed
FROM by_day GROUP BY 1, 2
"""  # noqa: S608


def _cohort_by(accepted: str) -> str:
    return f"""
SELECT {accepted} AS grp, count(*)::int AS contacted, count(e.referral)::int AS engaged
FROM referral_event c
JOIN referral r ON r.id = c.referral JOIN agency a ON a.id = r.agency
LEFT JOIN (SELECT DISTINCT referral FROM referral_event
           WHERE type = '{Status.engaged}' AND voided_at IS NULL) e ON e.referral = c.referral
WHERE c.type = '{Status.contacted}' AND c.occurred_on BETWEEN $1 AND $2 AND c.voided_at IS NULL
GROUP BY 1
"""  # noqa: S608


QUARTERLY_BY_SQL = {name: _quarterly_by(*exprs) for name, exprs in _GROUPS.items()}
"""The quarterly report's counts per agency or local authority and quarter."""
COHORT_BY_SQL = {name: _cohort_by(exprs[0]) for name, exprs in _GROUPS.items()}
"""The engagement rate's cohort per agency or local authority."""


FEEDBACK_BY_SQL = {
    name: f"""
SELECT {accepted} AS grp, {quarter_sql("f.collected_on")} AS quarter, f.stage,
       min(f.collected_on) AS first_day,
       count(*) AS responded,
       count(*) FILTER (WHERE f.behaviour IN ('{Behaviour.stopped}', '{Behaviour.reduced}'))
           AS improved
FROM feedback f
JOIN victim v ON v.id = f.victim JOIN referral r ON r.id = v.referral
JOIN agency a ON a.id = r.agency
WHERE f.collected_on BETWEEN $1 AND $2
GROUP BY 1, 2, 3
"""  # noqa: S608
    for name, (accepted, _) in _GROUPS.items()
}
"""Victims' feedback per agency or local authority of the perpetrator's referral."""
