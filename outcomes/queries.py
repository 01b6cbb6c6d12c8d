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
