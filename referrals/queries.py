"""Every SQL statement of the referrals domain written by hand."""

from __future__ import annotations

# Transaction-scoped, so simultaneous referrals of one person queue on the
# person's identifying keys and the second finds the first.
LOCK_PERSON_KEY = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
