"""Every SQL statement of programme delivery, with statuses and marks from their enums."""

from __future__ import annotations

from programme.delivery.rules import ON_THE_COURSE, Mark
from referrals.rules import Status

CREATE_PROGRAMME = """
INSERT INTO programme (id, name, weeks, core_sessions, completion_min_sessions,
                       exit_review_required, at_risk_absences, updated_at)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, now())
ON CONFLICT (name) DO NOTHING
"""

STATUS_AND_ENGAGED_ON = f"""
SELECT r.id, r.status,
       (SELECT max(occurred_on) FROM referral_event
        WHERE referral = r.id AND type = '{Status.engaged}') AS engaged_on
FROM referral r WHERE r.id = ANY($1::uuid[])
"""  # noqa: S608 - constants only; values are bound

MARKS_OF_REFERRAL = """
SELECT a.status, s.held_on, s.kind FROM attendance a
JOIN programme_session s ON s.id = a.session
WHERE a.referral = $1 ORDER BY s.held_on, s.number
"""

WAITING_LIST = f"""
SELECT r.id, r.reference, e.engaged_on
FROM referral r
JOIN LATERAL (
    SELECT max(occurred_on) AS engaged_on FROM referral_event
    WHERE referral = r.id AND type = '{Status.engaged}'
) e ON true
WHERE r.status = '{Status.engaged}'
  AND NOT EXISTS (SELECT 1 FROM group_member m WHERE m.referral = r.id AND m.left_on IS NULL)
ORDER BY e.engaged_on, r.reference
"""  # noqa: S608 - constants only

# The one definition of "consecutive unexcused absences": the run of absent marks
# at the end of a person's register, in session order. The register raises its
# at-risk alert from it and the at-risk list reads it. $1: one referral, or NULL
# for everyone.
ABSENCE_RUNS = f"""
WITH ranked AS (
    SELECT a.referral, a.status, s.held_on,
           row_number() OVER (PARTITION BY a.referral
                              ORDER BY s.held_on DESC, s.number DESC) AS n
    FROM attendance a JOIN programme_session s ON s.id = a.session
    WHERE $1::uuid IS NULL OR a.referral = $1::uuid
), runs AS (
    SELECT referral, max(held_on) AS last_marked_on,
           coalesce(min(n) FILTER (WHERE status <> '{Mark.absent}'), count(*) + 1) - 1 AS run
    FROM ranked GROUP BY referral
)
SELECT runs.*, ranked.held_on AS run_began
FROM runs LEFT JOIN ranked ON ranked.referral = runs.referral AND ranked.n = runs.run
"""  # noqa: S608 - constants only

AT_RISK = f"""
WITH absence_runs AS ({ABSENCE_RUNS})
SELECT r.id AS referral_id, r.reference, g.name AS "group",
       runs.run AS consecutive_absences, runs.last_marked_on
FROM absence_runs runs
JOIN referral r ON r.id = runs.referral
JOIN group_member m ON m.referral = r.id AND m.left_on IS NULL
JOIN "group" g ON g.id = m."group"
WHERE runs.run >= $2 AND r.status IN ({", ".join(f"'{s}'" for s in sorted(ON_THE_COURSE))})
  AND ($3::uuid IS NULL OR m."group" IN (
        SELECT "group" FROM group_facilitator WHERE account = $3::uuid))
ORDER BY runs.run DESC, r.reference
"""  # noqa: S608 - constants only
