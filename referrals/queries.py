"""Every SQL statement of the referrals domain written by hand."""

from __future__ import annotations

# Transaction-scoped, so simultaneous referrals of one person queue on the
# person's identifying keys and the second finds the first.
LOCK_PERSON_KEY = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"

# A resubmission replaces the earlier returns of the same person by the same agency in
# its quarter ($3, $4: the quarter's first and last days); the reports count the rest.
REPLACE_RETURNS = """
UPDATE returned_referral SET replaced = true
WHERE person_fingerprint = $1 AND agency = $2 AND NOT replaced
  AND received_on BETWEEN $3 AND $4
"""
