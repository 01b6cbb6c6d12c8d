"""Every SQL statement of the imports. Lists go in as one array parameter
(``= ANY($1)``), never one parameter per row: a file may hold 100,000 rows and
PostgreSQL takes at most 32,767 parameters."""

from __future__ import annotations

from collections.abc import Sequence

# Joined to the file's keys and phones rather than ``= ANY($1) OR phone = ANY($2)``:
# with the OR (and in a generic plan, always) PostgreSQL compares every stored
# person with every element of both arrays, and a 200,000-row file against
# 100,000 stored people took minutes. Hash joins take a tenth of a second.
PEOPLE_BY_KEY_OR_PHONE = """
SELECT id, match_key, date_of_birth, phone FROM person
WHERE match_key IN (SELECT unnest($1::text[]))
UNION
SELECT id, match_key, date_of_birth, phone FROM person
WHERE phone IN (SELECT unnest($2::text[]))
"""


def person_details(columns: Sequence[str]) -> str:
    """Put a person's details (``referrals.rules.person_values``' columns) right, by id."""
    assigned = ", ".join(f"{column} = ${n}" for n, column in enumerate(columns, start=2))
    return f"UPDATE person SET {assigned} WHERE id = $1"  # noqa: S608 - the code's own columns


KNOWN_REFERENCES = "SELECT reference FROM referral WHERE reference = ANY($1::text[])"

KNOWN_RETURN_FINGERPRINTS = (
    "SELECT fingerprint FROM returned_referral WHERE fingerprint = ANY($1::text[])"
)

OPEN_REFERRALS_OF = """
SELECT person, reference FROM referral
WHERE person = ANY($1::uuid[]) AND status = ANY($2::text[])
"""

PEOPLE_BY_REFERENCE = "SELECT reference, person FROM referral WHERE reference = ANY($1::text[])"

PEOPLE_BY_MATCH_KEY = "SELECT id, match_key FROM person WHERE match_key = ANY($1::text[])"

KNOWN_INCIDENT_FINGERPRINTS = (
    "SELECT fingerprint FROM reoffence WHERE fingerprint = ANY($1::text[])"
)

FIRST_REFERRAL_OF = """
SELECT person, min(received_on) AS received_on FROM referral
WHERE person = ANY($1::uuid[]) GROUP BY person
"""
