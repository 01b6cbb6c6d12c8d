"""The reoffending cohort as a table: one row per referral, kept current by triggers.

Working the cohort out from the event and incident tables on every computed analysis
took seconds inside PostgreSQL at a million referrals (the events' milestones grouped,
every incident joined to every referral of its person), more than the whole model fit.
Here each referral's row holds what the analysis reads, with the dates that do not
depend on the cut-off: its baseline details, its first engagement and completion
(voided steps left out) and the person's first incident after it was received. The
cut-off is applied when the table is read (``analysis.queries.COHORT_COPY_SQL``): the
first of those dates on or before the cut-off is the first date, if that is on or
before it, so nothing here moves with the cut-off.

Why triggers, and not the services: every write path (the API, the imports' COPY, the
CLI, the register's derived steps, a restore, a correction in psql) keeps the row right,
and the rule lives once, here, not again in Python. Statement-level with transition
tables, so an import of a million rows refreshes its referrals in one set-based pass;
``ENABLE ALWAYS``, so loads with ``session_replication_role = replica`` (the benchmark's
generator, the tests' emptying) keep it right too. No foreign key: its cascade does not
fire under ``replica``, and its check would cost a look-up per row on every import; the
triggers delete and truncate the rows themselves.

The cohort's rows are written in the same statement as the tables they come from, so the
results cache's data version (``analysis_data_change``) already moves with them.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T20:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "reoffending_cohort"


def _parts(day: str, name: str) -> str:
    # As the cohort query sent them (analysis.queries._parts): a date column can hold
    # +-infinity, which has no year and reads as not recorded.
    return (
        f"CASE WHEN isfinite({day}) THEN extract(year FROM {day})::int END AS {name}_year, "
        f"CASE WHEN isfinite({day}) THEN (extract(month FROM {day}) * 100 "
        f"+ extract(day FROM {day}))::int END AS {name}_month_day"
    )


REFRESH_BODY = f"""
DELETE FROM reoffending_cohort WHERE referral = ANY($1);
INSERT INTO reoffending_cohort (
    referral, person, agency, received_on, received_year, received_month_day,
    born_year, born_month_day, gender, risk_level, prior_incidents, substance_misuse,
    mental_health, children_in_household, local_authority,
    engaged_on, completed_on, reoffended_on)
WITH milestones AS (
    SELECT referral,
           min(occurred_on) FILTER (WHERE type = 'engaged') AS engaged_on,
           min(occurred_on) FILTER (WHERE type = 'completed') AS completed_on
    FROM referral_event
    WHERE referral = ANY($1) AND type IN ('engaged', 'completed') AND voided_at IS NULL
    GROUP BY referral
), first_after AS (
    SELECT r.id AS referral, min(o.offence_date) AS reoffended_on
    FROM referral r JOIN reoffence o ON o.person = r.person
    WHERE r.id = ANY($1) AND o.offence_date > r.received_on
    GROUP BY r.id
)
SELECT r.id, r.person, r.agency, r.received_on, {_parts("r.received_on", "received")},
       {_parts("p.date_of_birth", "born")}, p.gender, r.risk_level, r.prior_incidents,
       r.substance_misuse, r.mental_health, r.children_in_household, r.local_authority,
       m.engaged_on, m.completed_on, f.reoffended_on
FROM referral r
JOIN person p ON p.id = r.person
LEFT JOIN milestones m ON m.referral = r.id
LEFT JOIN first_after f ON f.referral = r.id
WHERE r.id = ANY($1)
"""

FORWARDS = [
    """
    CREATE TABLE reoffending_cohort (
        referral uuid PRIMARY KEY,
        person uuid NOT NULL,
        agency uuid NOT NULL,
        received_on date NOT NULL,
        received_year integer,
        received_month_day integer,
        born_year integer,
        born_month_day integer,
        gender varchar(10),
        risk_level varchar(10),
        prior_incidents integer,
        substance_misuse boolean,
        mental_health boolean,
        children_in_household boolean,
        local_authority varchar(50),
        engaged_on date,
        completed_on date,
        reoffended_on date
    )
    """,
    "CREATE INDEX reoffending_cohort_person ON reoffending_cohort (person)",
    # Each statement is planned with the referrals it is given (EXECUTE): an index probe
    # for one referral's new step, hash joins for an import's million.
    f"""
    CREATE FUNCTION reoffending_cohort_refresh(referrals uuid[]) RETURNS void
    LANGUAGE plpgsql AS $body$
    BEGIN
        IF cardinality(referrals) = 0 THEN
            RETURN;
        END IF;
        EXECUTE $$ {REFRESH_BODY.split(";", 1)[0]} $$ USING referrals;
        EXECUTE $$ {REFRESH_BODY.split(";", 1)[1]} $$ USING referrals;
    END
    $body$
    """,
    # referral: its own row, whatever changed (a new person or date moves the first
    # incident after it too).
    """
    CREATE FUNCTION reoffending_cohort_referral() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            -- Not TRUNCATE: the statement that fired this may be truncating it already.
            DELETE FROM reoffending_cohort;
        ELSIF TG_OP = 'DELETE' THEN
            DELETE FROM reoffending_cohort c USING old_rows o WHERE c.referral = o.id;
        ELSE
            PERFORM reoffending_cohort_refresh(ARRAY(SELECT id FROM new_rows));
        END IF;
        RETURN NULL;
    END
    $$
    """,
    # person: the date of birth and gender of each of their referrals.
    """
    CREATE FUNCTION reoffending_cohort_person() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM reoffending_cohort_refresh(ARRAY(
            SELECT r.id FROM referral r JOIN new_rows p ON p.id = r.person));
        RETURN NULL;
    END
    $$
    """,
    # referral_event: only engagements and completions move a row (a voiding is an update).
    """
    CREATE FUNCTION reoffending_cohort_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            PERFORM reoffending_cohort_refresh(ARRAY(SELECT id FROM referral));
        ELSIF TG_OP = 'INSERT' THEN
            PERFORM reoffending_cohort_refresh(ARRAY(
                SELECT DISTINCT referral FROM new_rows WHERE type IN ('engaged', 'completed')));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM reoffending_cohort_refresh(ARRAY(
                SELECT DISTINCT referral FROM old_rows WHERE type IN ('engaged', 'completed')));
        ELSE
            PERFORM reoffending_cohort_refresh(ARRAY(
                SELECT referral FROM new_rows WHERE type IN ('engaged', 'completed')
                UNION
                SELECT referral FROM old_rows WHERE type IN ('engaged', 'completed')));
        END IF;
        RETURN NULL;
    END
    $$
    """,
    # reoffence: every referral of the people whose incidents changed.
    """
    CREATE FUNCTION reoffending_cohort_incident() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            PERFORM reoffending_cohort_refresh(ARRAY(SELECT id FROM referral));
        ELSIF TG_OP = 'INSERT' THEN
            PERFORM reoffending_cohort_refresh(ARRAY(
                SELECT r.id FROM referral r
                WHERE r.person IN (SELECT person FROM new_rows)));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM reoffending_cohort_refresh(ARRAY(
                SELECT r.id FROM referral r
                WHERE r.person IN (SELECT person FROM old_rows)));
        ELSE
            PERFORM reoffending_cohort_refresh(ARRAY(
                SELECT r.id FROM referral r
                WHERE r.person IN (SELECT person FROM new_rows UNION SELECT person FROM old_rows)));
        END IF;
        RETURN NULL;
    END
    $$
    """,
]

_TRIGGERS = (
    ("referral", "reoffending_cohort_referral", ("INSERT", "UPDATE", "DELETE", "TRUNCATE")),
    ("person", "reoffending_cohort_person", ("UPDATE",)),
    ("referral_event", "reoffending_cohort_event", ("INSERT", "UPDATE", "DELETE", "TRUNCATE")),
    ("reoffence", "reoffending_cohort_incident", ("INSERT", "UPDATE", "DELETE", "TRUNCATE")),
)

_TRANSITIONS = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
    "TRUNCATE": "",
}

for _table, _function, _events in _TRIGGERS:
    for _event in _events:
        _name = f"reoffending_cohort_{_event.lower()}"
        FORWARDS.append(
            f"CREATE TRIGGER {_name} AFTER {_event} ON {_table} {_TRANSITIONS[_event]}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {_function}()"
        )
        FORWARDS.append(f"ALTER TABLE {_table} ENABLE ALWAYS TRIGGER {_name}")

# The referrals already recorded, and statistics for the planner at once (the read's join
# and order are planned on them; autovacuum would take a while to get to it).
FORWARDS.append("SELECT reoffending_cohort_refresh(ARRAY(SELECT id FROM referral))")
FORWARDS.append("ANALYZE reoffending_cohort")

BACKWARDS = [
    *(
        f"DROP TRIGGER IF EXISTS reoffending_cohort_{event.lower()} ON {table}"
        for table, _, events in _TRIGGERS
        for event in events
    ),
    *(f"DROP FUNCTION IF EXISTS {function}()" for _, function, _ in _TRIGGERS),
    "DROP FUNCTION IF EXISTS reoffending_cohort_refresh(uuid[])",
    "DROP TABLE IF EXISTS reoffending_cohort",
]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="analysis", description=DESCRIPTION)

    async def add_cohort():
        for statement in FORWARDS:
            await RawTable.raw(statement)

    async def drop_cohort():
        for statement in BACKWARDS:
            await RawTable.raw(statement)

    manager.add_raw(add_cohort)
    manager.add_raw_backwards(drop_cohort)
    return manager
