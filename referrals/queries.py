"""Every SQL statement of the referrals domain written by hand."""

from __future__ import annotations

# Transaction-scoped, so simultaneous referrals of one person queue on the
# person's identifying keys and the second finds the first.
LOCK_PERSON_KEY = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"

# Referrals found by a search (``referrals.rules.Search``), newest first, one page, with
# how many match in all. $1 reference (whole, any case), $2 date of birth, $3 the name's
# folded words (each within the folded first or last name), $4 its letters run together
# (within first+last or last+first), $5 the status never found by name or date of birth
# (withdrawn: its personal details are withheld), $6 the only agency to look in,
# $7 the only referrals to look among; NULL where a term is not given. No index serves a
# part of a name (see the README, Data protection): person is scanned, folded already.
# match_key is 'last|first|YYYY-MM-DD', already folded as the search is.
_SEARCH_FROM = """
FROM referral r JOIN (
    SELECT id, date_of_birth,
           split_part(match_key, '|', 1) AS last_name,
           split_part(match_key, '|', 2) AS first_name
    FROM person
) p ON p.id = r.person
WHERE ($1::text IS NULL OR upper(r.reference) = upper($1::text))
  AND ($2::date IS NULL OR p.date_of_birth = $2::date)
  AND ($3::text[] IS NULL
       OR NOT EXISTS (
           SELECT 1 FROM unnest($3::text[]) AS word
           WHERE strpos(p.last_name, word) = 0 AND strpos(p.first_name, word) = 0)
       OR strpos(p.first_name || p.last_name, $4::text) > 0
       OR strpos(p.last_name || p.first_name, $4::text) > 0)
  AND (($3::text[] IS NULL AND $2::date IS NULL) OR r.status <> $5::text)
  AND ($6::uuid IS NULL OR r.agency = $6::uuid)
  AND ($7::uuid[] IS NULL OR r.id = ANY($7::uuid[]))
"""

# One scan gives the page and the total; SEARCH_COUNT only when a page beyond the end is empty.
SEARCH = (
    "SELECT r.id, count(*) OVER () AS total"
    + _SEARCH_FROM
    + "ORDER BY r.received_on DESC, r.id LIMIT $8 OFFSET $9"
)

SEARCH_COUNT = "SELECT count(*) AS total" + _SEARCH_FROM
# A resubmission replaces the earlier returns of the same person by the same agency in
# its quarter ($3, $4: the quarter's first and last days); the reports count the rest.
REPLACE_RETURNS = """
UPDATE returned_referral SET replaced = true
WHERE person_fingerprint = $1 AND agency = $2 AND NOT replaced
  AND received_on BETWEEN $3 AND $4
"""
