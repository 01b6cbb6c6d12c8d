"""Every SQL statement of programme delivery, with statuses and marks from their enums.

Marks on a cancelled session (``programme_session.cancelled_at`` set) are kept but
count for nothing, and voided lifecycle steps count nowhere: every statement here
leaves both out.
"""

from __future__ import annotations

from programme.delivery.rules import ON_THE_COURSE, REGISTER_SOURCE, Mark
from programme.platform.audit.queries import insert_entries
from programme.platform.locked_quarters.queries import share_quarters
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
        WHERE referral = r.id AND type = '{Status.engaged}' AND voided_at IS NULL) AS engaged_on
FROM referral r WHERE r.id = ANY($1::uuid[])
"""  # noqa: S608 - constants only; values are bound


# Who waits for a group place: engaged, with no place yet, and since when (their latest
# engagement that still counts).
#
# ``OFFSET 0`` keeps the open-place check a probe per engaged referral (of
# ``group_member_one_open_place``), taken in the order of ``referral_engaged_waiting``;
# it changes no row. Left to itself the planner turned it into a hash anti-join: every
# group place read (371,502 at a million referrals, nearly all open), and the engaged
# referrals handed on in hash order, so each one's latest engagement was looked up all
# over ``referral_event_engaged_counting``. In id order those look-ups walk that index
# from one end to the other: the dashboard's summary 156 to 223 ms inside PostgreSQL,
# against 200 to 364 ms (bench/README.md, "Issue 15 part 6, again").
_WAITING = f"""
FROM referral r
JOIN LATERAL (
    SELECT max(occurred_on) AS engaged_on FROM referral_event
    WHERE referral = r.id AND type = '{Status.engaged}' AND voided_at IS NULL
) e ON true
WHERE r.status = '{Status.engaged}'
  AND NOT EXISTS (SELECT 1 FROM group_member m WHERE m.referral = r.id AND m.left_on IS NULL
                  OFFSET 0)
"""  # noqa: S608 - constants only

WAITING_LIST = f"""
SELECT r.id, r.reference, e.engaged_on
{_WAITING}
ORDER BY e.engaged_on, r.reference
"""

# The waiting list's counts alone, for the monitors' dashboard: how many wait, the median
# and the longest days waiting at $1 (today), as ``services._waiting`` works them out from
# the whole list (the median of an even count the mean of the middle two, which is how
# ``percentile_cont`` interpolates), without sending 50,000 rows to be counted in Python.
WAITING_SUMMARY = f"""
WITH waiting AS (SELECT e.engaged_on {_WAITING})
SELECT count(*) AS count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY $1::date - engaged_on) AS median,
       max($1::date - engaged_on) AS longest
FROM waiting
"""  # noqa: S608 - constants only


# The one definition of "consecutive unexcused absences": the run of absent marks
# at the end of a person's register, in session order. The register raises its
# at-risk alert from it (for the referrals it changed, ``MILESTONE_FACTS``) and the
# at-risk list reads it (``ABSENCE_RUNS``, $1: one referral, or NULL for everyone).
# ``marks``: the marks that count (``referral``, ``status``, ``held_on``, ``number``).
# A mark is in the run when it and every later one are absent (a running ``bool_and``
# from the latest back), so one pass over the marks answers the run, the day it
# began and the last marked day, with no second look-up of the run's first mark.
def _absence_runs(marks: str) -> str:
    return f"""
SELECT referral, max(held_on) AS last_marked_on,
       count(*) FILTER (WHERE in_run) AS run,
       min(held_on) FILTER (WHERE in_run) AS run_began
FROM (
    SELECT referral, held_on,
           bool_and(status = '{Mark.absent}') OVER (
               PARTITION BY referral ORDER BY held_on DESC, number DESC
               ROWS UNBOUNDED PRECEDING) AS in_run
    FROM ({marks}) marks
) latest_first
GROUP BY referral
"""  # noqa: S608 - constants only


# The marks that count of the referrals ``whose`` names: on sessions not cancelled.
def _counted_marks(whose: str) -> str:
    return f"""
    SELECT a.referral, a.status, s.held_on, s.number, s.kind
    FROM attendance a JOIN programme_session s ON s.id = a.session
    WHERE {whose} AND s.cancelled_at IS NULL
"""  # noqa: S608 - constants only


ABSENCE_RUNS = _absence_runs(_counted_marks("($1::uuid IS NULL OR a.referral = $1::uuid)"))

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

# The referrals with marks on one session's register, and each one's lifecycle steps
# that still count: compared before and after a session is moved or cancelled, to
# know which days' figures the change touched.
MARKED_ON_SESSION = "SELECT referral FROM attendance WHERE session = $1 ORDER BY referral"

COUNTING_STEPS = """
SELECT referral, type, occurred_on FROM referral_event
WHERE referral = ANY($1::uuid[]) AND voided_at IS NULL
"""

LAST_MARKED_IN_GROUP = """
SELECT max(s.held_on) AS last_marked_on FROM attendance a
JOIN programme_session s ON s.id = a.session
WHERE a.referral = $1 AND s."group" = $2 AND s.cancelled_at IS NULL
"""

# The members now of session ``s``'s group, with their status, in the order they joined:
# what a register lists (``REGISTER_SHEET``, ``REGISTER_CONTEXT``).
_MEMBERS_NOW_OF_SESSION = """
    SELECT array_agg(r.id ORDER BY gm.joined_on, r.reference) AS ids,
           array_agg(r.reference ORDER BY gm.joined_on, r.reference) AS refs,
           array_agg(r.status ORDER BY gm.joined_on, r.reference) AS statuses,
           array_agg(gm.joined_on ORDER BY gm.joined_on, r.reference) AS joined_on
    FROM group_member gm JOIN referral r ON r.id = gm.referral
    WHERE gm."group" = s."group" AND gm.left_on IS NULL
"""
_MEMBERS_NOW = """members.ids AS member_ids, members.refs AS member_refs,
       members.statuses AS member_statuses, members.joined_on AS member_joined_on,"""

# A session's register as its page draws it, in one statement (the API's ``GET`` of the
# marks reads it too): the session and its group's name, whether account $2 facilitates
# the group, its members now with their status (in the order they joined) and the
# session's marks by reference. A member's change history and the group's facilitators
# are not needed to mark a register.
REGISTER_SHEET = f"""
SELECT s.id, s."group", g.name AS group_name, s.number, s.held_on, s.kind, s.cancelled_at,
       EXISTS (SELECT 1 FROM group_facilitator f
               WHERE f."group" = s."group" AND f.account = $2::uuid) AS facilitates,
       {_MEMBERS_NOW}
       marks.ids AS mark_ids, marks.refs AS mark_refs, marks.statuses AS mark_statuses,
       marks.marked_by AS mark_marked_by
FROM programme_session s
JOIN "group" g ON g.id = s."group"
CROSS JOIN LATERAL ({_MEMBERS_NOW_OF_SESSION}) members
CROSS JOIN LATERAL (
    SELECT array_agg(r.id ORDER BY r.reference) AS ids,
           array_agg(r.reference ORDER BY r.reference) AS refs,
           array_agg(a.status ORDER BY r.reference) AS statuses,
           array_agg(m.username ORDER BY r.reference) AS marked_by
    FROM attendance a JOIN referral r ON r.id = a.referral
    LEFT JOIN account m ON m.id = a.marked_by
    WHERE a.session = s.id
) marks
WHERE s.id = $1
"""  # noqa: S608 - constants only; values are bound

# Saving a register, in as few round trips as its locks allow (``services.record_register``
# says why each is a statement of its own).

# The session, locked, and all that checking a register needs: who may mark it, the
# programme's rule, the group's members now (a register saved from its page must mark
# every one, and the page draws them afterwards), and for each person named ($3) their
# status, when they engaged and whether they ever had a place in the session's group.
# $2: the account saving it; $4: the programme's name.
REGISTER_CONTEXT = f"""
SELECT s.id, s."group", g.name AS group_name, s.number, s.held_on, s.kind, s.cancelled_at,
       EXISTS (SELECT 1 FROM group_facilitator f
               WHERE f."group" = s."group" AND f.account = $2::uuid) AS facilitates,
       p.id AS programme_id, p.weeks, p.core_sessions, p.completion_min_sessions,
       p.exit_review_required, p.at_risk_absences,
       {_MEMBERS_NOW}
       people.ids, people.statuses, people.engaged_on, people.members
FROM programme_session s
JOIN "group" g ON g.id = s."group"
LEFT JOIN programme p ON p.name = $4
CROSS JOIN LATERAL ({_MEMBERS_NOW_OF_SESSION}) members
CROSS JOIN LATERAL (
    SELECT array_agg(r.id) AS ids, array_agg(r.status) AS statuses,
           array_agg((SELECT max(occurred_on) FROM referral_event
                      WHERE referral = r.id AND type = '{Status.engaged}'
                        AND voided_at IS NULL)) AS engaged_on,
           array_agg(EXISTS (SELECT 1 FROM group_member m
                             WHERE m."group" = s."group" AND m.referral = r.id)) AS members
    FROM referral r WHERE r.id = ANY($3::uuid[])
) people
WHERE s.id = $1
FOR UPDATE OF s
"""  # noqa: S608 - constants only; values are bound

# The register's marks ($2 referrals, $3 marks) written on session $1 by account $4 at
# $5: new marks inserted, changed ones corrected, the same ones left alone; the changed
# people's referrals locked in id order first, then, if a mark changed, the shared lock
# of the session's quarter ($6, its label; see ``services.record_register``). Answers
# the session's whole register as it now stands, by reference, with each changed line's
# earlier mark (``was``, NULL for a new one) and each person's status before the
# register's milestones (read after the session's lock, so after any save before it).
SAVE_MARKS = f"""
WITH given AS (
    SELECT * FROM unnest($2::uuid[], $3::text[]) AS g(referral, status)
), existing AS (
    SELECT id, referral, status, marked_by FROM attendance WHERE session = $1
), changed AS (
    SELECT g.referral, g.status, e.id AS attendance, e.status AS was
    FROM given g LEFT JOIN existing e ON e.referral = g.referral
    WHERE e.status IS DISTINCT FROM g.status
), locked AS (
    SELECT id FROM referral WHERE id IN (SELECT referral FROM changed)
    ORDER BY id FOR UPDATE
), quarter_shared AS (
    -- Reads ``locked`` whole first, so the quarter's lock comes after the referrals'.
    SELECT count(*) FROM ({share_quarters("$6")}) q
    WHERE EXISTS (SELECT 1 FROM changed) AND (SELECT count(*) FROM locked) >= 0
), added AS (
    INSERT INTO attendance (session, referral, status, marked_by, marked_at)
    SELECT $1, referral, status, $4::uuid, $5::timestamptz FROM changed WHERE attendance IS NULL
), corrected AS (
    UPDATE attendance a SET status = c.status, marked_by = $4::uuid, marked_at = $5::timestamptz
    FROM changed c WHERE a.id = c.attendance
)
SELECT r.id AS referral_id, r.reference, coalesce(c.status, e.status) AS status,
       m.username AS marked_by, c.referral IS NOT NULL AS changed, c.was,
       r.status AS referral_status,
       (SELECT count(*) FROM locked) AS locked,
       (SELECT count FROM quarter_shared) AS quarter_shared
FROM (SELECT referral FROM existing UNION SELECT referral FROM changed) l
JOIN referral r ON r.id = l.referral
LEFT JOIN existing e ON e.referral = l.referral
LEFT JOIN changed c ON c.referral = l.referral
LEFT JOIN account m ON m.id = CASE WHEN c.referral IS NULL THEN e.marked_by ELSE $4::uuid END
ORDER BY r.reference
"""  # noqa: S608 - constants only; values are bound

# What deciding the register's milestones reads, for each of the referrals $1 (whose
# rows the caller has locked): status, marks that count in session order, lifecycle
# steps that count, exit review, the run of absences at the end of the register, and
# the latest at-risk alert. The marks that count are read once (``counted``), for both
# the marks and the runs: this statement runs while the referrals are locked, so
# every save of the same people waits for it.
# (The runs with a condition of their own: in a generic plan, ``ABSENCE_RUNS``'s "or
# NULL for everyone" cannot use the attendance index, so PostgreSQL would have to plan
# this statement afresh on every save.)
MILESTONE_FACTS = f"""
WITH counted AS ({_counted_marks("a.referral = ANY($1::uuid[])")}),
absence_runs AS ({_absence_runs("SELECT * FROM counted")}),
marks AS (
    SELECT referral,
           array_agg(status ORDER BY held_on, number) AS marks,
           array_agg(held_on ORDER BY held_on, number) AS held_on,
           array_agg(kind ORDER BY held_on, number) AS kinds
    FROM counted GROUP BY referral
)
SELECT r.id, r.status, r.status_on,
       marks.marks, marks.held_on, marks.kinds,
       steps.ids AS step_ids, steps.types AS step_types, steps.occurred_on AS step_on,
       steps.sources AS step_sources,
       (SELECT x.held_on FROM exit_review x WHERE x.referral = r.id) AS exit_review_on,
       runs.run, runs.run_began, runs.last_marked_on,
       (SELECT max(p.raised_on) FROM participant_alert p
        WHERE p.referral = r.id AND p.kind = 'at_risk') AS alerted_on
FROM referral r
LEFT JOIN marks ON marks.referral = r.id
CROSS JOIN LATERAL (
    SELECT array_agg(e.id ORDER BY e.id) AS ids, array_agg(e.type ORDER BY e.id) AS types,
           array_agg(e.occurred_on ORDER BY e.id) AS occurred_on,
           array_agg(e.source ORDER BY e.id) AS sources
    FROM referral_event e WHERE e.referral = r.id AND e.voided_at IS NULL
) steps
LEFT JOIN absence_runs runs ON runs.referral = r.id
WHERE r.id = ANY($1::uuid[])
ORDER BY r.id
"""  # noqa: S608 - constants only

# What the register decided, written at once with every audit row of the save: steps
# added ($4-$6) by account $1 at $2, removed ($7) and re-dated ($8, $9); referrals'
# new status ($10-$12); at-risk alerts ($13, $14, each with detail $15); audit rows $3.
# And the reported quarters' check of a register save (``services.record_register``):
# answers which of the quarters $16 (shared by an earlier statement, ``SAVE_MARKS``) are
# locked, and takes the shared locks of the other quarters the save touches ($17),
# which a later statement reads.
SAVE_MILESTONES = f"""
WITH added AS (
    INSERT INTO referral_event (referral, type, occurred_on, recorded_by, recorded_at, source)
    SELECT referral, type, occurred_on, $1::uuid, $2::timestamptz, '{REGISTER_SOURCE}'
    FROM unnest($4::uuid[], $5::text[], $6::date[]) AS x(referral, type, occurred_on)
), removed AS (
    DELETE FROM referral_event WHERE id = ANY($7::bigint[])
), moved AS (
    UPDATE referral_event e SET occurred_on = x.occurred_on
    FROM unnest($8::bigint[], $9::date[]) AS x(id, occurred_on) WHERE e.id = x.id
), progressed AS (
    UPDATE referral r SET status = x.status, status_on = x.status_on, version = r.version + 1
    FROM unnest($10::uuid[], $11::text[], $12::date[]) AS x(id, status, status_on)
    WHERE r.id = x.id
), alerted AS (
    INSERT INTO participant_alert (referral, kind, raised_on, detail, created_at)
    SELECT referral, 'at_risk', raised_on, $15::jsonb, $2::timestamptz
    FROM unnest($13::uuid[], $14::date[]) AS x(referral, raised_on)
), audited AS (
    {insert_entries(3)}
), quarters_shared AS ({share_quarters("$17")})
SELECT (SELECT count(*) FROM quarters_shared) AS quarters_shared,
       ARRAY(SELECT quarter FROM locked_quarter WHERE quarter = ANY($16::text[])
             ORDER BY first_day) AS locked
"""  # noqa: S608 - constants only; values are bound
