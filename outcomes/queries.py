"""Every SQL statement of the outcomes domain written by hand."""

from __future__ import annotations

LATEST_CONSENTS = """
SELECT DISTINCT ON (victim) victim, given, obtained_on, withdrawn_on
FROM contact_consent WHERE victim = ANY($1::uuid[])
ORDER BY victim, created_at DESC
"""

# One row per victim and stage (a unique index): a second recording replaces it.
RECORD_FEEDBACK = """
INSERT INTO feedback (id, victim, stage, collected_on, behaviour, feels_safer,
                      note, recorded_by, updated_at)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, now())
ON CONFLICT (victim, stage) DO UPDATE SET
    collected_on = EXCLUDED.collected_on, behaviour = EXCLUDED.behaviour,
    feels_safer = EXCLUDED.feels_safer, note = EXCLUDED.note,
    recorded_by = EXCLUDED.recorded_by, updated_at = now()
RETURNING (xmax = 0) AS inserted
"""

# The victims a victim worker supports (``outcomes.rules.supports``): $1 the worker's
# account id, or NULL for every victim (admins reading). One row per victim with the
# three kinds of work the rule names.
CASELOAD = """
SELECT v.id, v.referral,
       v.recorded_by = $1::uuid AS recorded_victim,
       EXISTS (SELECT 1 FROM contact_consent c
               WHERE c.victim = v.id AND c.recorded_by = $1::uuid) AS recorded_consent,
       EXISTS (SELECT 1 FROM feedback f
               WHERE f.victim = v.id AND f.recorded_by = $1::uuid) AS recorded_feedback
FROM victim v
WHERE $1::uuid IS NULL
   OR v.recorded_by = $1::uuid
   OR EXISTS (SELECT 1 FROM contact_consent c WHERE c.victim = v.id AND c.recorded_by = $1::uuid)
   OR EXISTS (SELECT 1 FROM feedback f WHERE f.victim = v.id AND f.recorded_by = $1::uuid)
"""

# A page of victims by id, with their perpetrator's referral and its latest alert.
# $1 the victims (a caseload), $2 limit, $3 offset; newest victim first.
CASES = """
SELECT v.id, v.referral, v.first_name, v.last_name, v.phone, v.relationship,
       r.reference, r.status, r.status_on,
       a.kind AS alert_kind, a.raised_on AS alert_raised_on,
       a.withdrawn_on AS alert_withdrawn_on
FROM victim v
JOIN referral r ON r.id = v.referral
LEFT JOIN LATERAL (
    SELECT kind, raised_on, withdrawn_on FROM participant_alert pa
    WHERE pa.referral = v.referral
    ORDER BY raised_on DESC, created_at DESC
    LIMIT 1
) a ON true
WHERE v.id = ANY($1::uuid[])
ORDER BY v.created_at DESC, v.id
LIMIT $2 OFFSET $3
"""

# The alerts on the referrals of a caseload's victims, newest first, one page; $1 the
# referrals, $2 limit, $3 offset. Each alert once, with the caseload's victims it concerns.
CASE_ALERTS = """
SELECT pa.id, pa.kind, pa.raised_on, pa.withdrawn_on, pa.referral, r.reference
FROM participant_alert pa JOIN referral r ON r.id = pa.referral
WHERE pa.referral = ANY($1::uuid[])
ORDER BY pa.raised_on DESC, pa.created_at DESC, pa.id
LIMIT $2 OFFSET $3
"""

CASE_ALERTS_COUNT = """
SELECT count(*) AS total FROM participant_alert WHERE referral = ANY($1::uuid[])
"""
