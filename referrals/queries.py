"""Every SQL statement of the referrals domain written by hand."""

from __future__ import annotations

from programme.platform.audit.queries import insert_entries

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

# The returned-person key and the person's identifying keys, locked in the order given
# (the caller's: the return first, then the keys sorted) in one round trip. The locks
# are taken after the ORDER BY: PostgreSQL evaluates a volatile target list after sorting.
LOCK_PERSON_KEYS = """
SELECT pg_advisory_xact_lock(hashtextextended(k, 0))
FROM unnest($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n
"""

# Accepting a referral in one statement, once the keys are locked (LOCK_PERSON_KEYS, a
# statement of its own so this one's snapshot sees whatever the lock waited for): replace
# the agency's earlier returns of the person in the quarter, find the person (same match
# key, or same birth date and phone), stop at an open referral of theirs, else store the
# person if new, the referral, its acceptance step and the audit row. Parameters:
# $1 returned-person fingerprint (or NULL), $2 agency, $3/$4 the quarter's first and last
# days, $5 match key, $6 date of birth, $7 phone, $8 the open statuses, $9 new person's
# id, $10 first name, $11 last name, $12 gender, $13 'accepted', $14 missing details
# (JSON), $15 referral id, $16 the referrer's reference (or NULL), $17 generated
# references tried in order, $18 submitter, $19 received on, $20 local authority,
# $21 relationship, $22 risk level, $23 prior incidents, $24 substance misuse,
# $25 mental health, $26 children in household, $27 consent obtained on, $28 consent
# method, $29 notes, $30 quality score, $31 the audit row (audit ``entry`` JSON). Nothing
# is stored when open_reference, or no reference, comes back: the caller raises and the
# transaction's rollback undoes the rest (a return replaced, the audit row).
_ACCEPT_WITH = """
WITH replaced AS (
    UPDATE returned_referral SET replaced = true
    WHERE $1::text IS NOT NULL AND person_fingerprint = $1::text AND agency = $2::uuid
      AND NOT replaced AND received_on BETWEEN $3::date AND $4::date
    RETURNING 1
), matched AS (
    SELECT id FROM person
    WHERE match_key = $5::text OR (date_of_birth = $6::date AND phone = $7::text)
), open_one AS (
    SELECT reference, agency FROM referral
    WHERE person IN (SELECT id FROM matched) AND status = ANY($8::text[])
    LIMIT 1
), known AS (
    SELECT id FROM matched LIMIT 1
), new_person AS (
    INSERT INTO person (id, first_name, last_name, date_of_birth, phone, gender, match_key,
                        created_at)
    SELECT $9::uuid, $10::text, $11::text, $6::date, $7::text, $12::text, $5::text, now()
    WHERE NOT EXISTS (SELECT 1 FROM matched) AND NOT EXISTS (SELECT 1 FROM open_one)
    RETURNING id
), previous AS (
    SELECT count(*) AS n FROM referral WHERE person = (SELECT id FROM known)
), chosen AS (
    SELECT coalesce($16::text, (
        SELECT t.c FROM unnest($17::text[]) WITH ORDINALITY AS t(c, n)
        WHERE NOT EXISTS (SELECT 1 FROM referral r WHERE r.reference = t.c)
        ORDER BY t.n LIMIT 1)) AS reference
), new_referral AS (
    INSERT INTO referral (id, reference, person, agency, submitted_by, status, status_on,
                          received_on, local_authority, relationship, risk_level,
                          prior_incidents, substance_misuse, mental_health,
                          children_in_household, consent_obtained_on, consent_method, notes,
                          quality_score, missing_details, version, created_at)
    SELECT $15::uuid, chosen.reference,
           coalesce((SELECT id FROM new_person), (SELECT id FROM known)),
           $2::uuid, $18::uuid, $13::text, $19::date, $19::date, $20::text, $21::text,
           $22::text, $23::integer, $24::boolean, $25::boolean, $26::boolean, $27::date,
           $28::text, $29::text, $30::integer, $14::jsonb, 1, now()
    FROM chosen
    WHERE chosen.reference IS NOT NULL AND NOT EXISTS (SELECT 1 FROM open_one)
    RETURNING id, reference
), accepted_step AS (
    INSERT INTO referral_event (referral, type, occurred_on, recorded_by, recorded_at, source)
    SELECT id, $13::text, $19::date, $18::uuid, now(), 'manual' FROM new_referral
), audited AS (
"""

_ACCEPT_SELECT = """
)
SELECT (SELECT id FROM new_referral) AS referral_id,
       (SELECT reference FROM new_referral) AS reference,
       (SELECT reference FROM open_one) AS open_reference,
       (SELECT agency FROM open_one) AS open_agency,
       (SELECT n FROM previous) AS previous
"""

ACCEPT = _ACCEPT_WITH + insert_entries(31) + _ACCEPT_SELECT

# A voided disengagement withdraws the alert it raised: the newest standing one raised on
# the step's day ($2) for the referral ($1), withdrawn on $3. One only: after a void the
# step may be recorded again, and that raises an alert of its own.
WITHDRAW_DISENGAGED_ALERT = """
UPDATE participant_alert SET withdrawn_on = $3::date
WHERE id = (
    SELECT id FROM participant_alert
    WHERE referral = $1::uuid AND kind = 'disengaged' AND raised_on = $2::date
      AND withdrawn_on IS NULL
    ORDER BY created_at DESC, id
    LIMIT 1
)
"""

# One page of a section of a facilitator's caseload: the referrals at the statuses $1 (a
# section may show two, as "engaged" shows engaged and started) that have waited longest,
# $2 of them after skipping $3, with the names the page shows and no more; $4 the only
# agency to look in (a referrer's), or NULL. Waiting for first contact: by the day
# received (``referral_status_received`` read backwards, ties by id sorted within a day);
# further on, by the day of the status (``referral_status_reached``). One branch per
# status, each read in order from its index and no further than the page's end, then
# merged: the planner otherwise read and sorted all 120,000 engaged and started referrals
# (in parallel) for the first fifty. The page's ids first, then their rows and names, so
# only the lines shown are joined to their people.
_CASELOAD_PAGE = """
SELECT r.id, r.reference, p.first_name, p.last_name, r.received_on, r.status, r.status_on
FROM (
    {branches}
    ORDER BY {order}, id
    LIMIT $2::bigint OFFSET $3::bigint
) AS shown
JOIN referral r ON r.id = shown.id
JOIN person p ON p.id = r.person
ORDER BY {shown_order}, shown.id
"""
_CASELOAD_BRANCH = """SELECT * FROM (
        SELECT id, received_on, status_on FROM referral
        WHERE status = ($1::text[])[{n}] AND ($4::uuid IS NULL OR agency = $4::uuid)
        ORDER BY {order}, id
        LIMIT $2::bigint + $3::bigint
    ) AS status_{n}"""
_WAITED_SINCE = {"received_on": "received_on", "status_on": "status_on, received_on"}


def caseload_page(statuses: int, waited_since: str) -> str:
    """The statement for a caseload page over ``statuses`` statuses (the first that many
    of $1), ordered by how long each has waited since ``waited_since``."""
    order = _WAITED_SINCE[waited_since]
    return _CASELOAD_PAGE.format(
        branches="\n    UNION ALL\n    ".join(
            _CASELOAD_BRANCH.format(n=n, order=order) for n in range(1, statuses + 1)
        ),
        order=order,
        shown_order=", ".join(f"shown.{column.strip()}" for column in order.split(",")),
    )


CASELOAD_SECTION_TOTAL = """
SELECT count(*) FROM referral
WHERE status = ANY($1::text[]) AND ($2::uuid IS NULL OR agency = $2::uuid)
"""
