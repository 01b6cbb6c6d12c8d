"""The reoffending analysis's results cache: a data version and the stored results.

A write to anything the analysis reads bumps the data version; a result is kept under
the version it was computed at, so one stored before a write is never served after it.

Why a row per server process, summed, and not one counter: one counter row updated by
every write would queue every writer on that row until it commits, and a writer holding
it while waiting for a referral's lock another writer holds (the register's saves lock
referrals) would deadlock. Each process's own row is touched by it alone, so nothing
queues; the sum moves only when a write commits, in the same snapshot as the data.
Statement-level, so an import of a million rows bumps it once per statement, not once
per row. ``ENABLE ALWAYS``: the triggers fire even with ``session_replication_role =
replica`` (bulk loads and the tests' emptying), or a cached result would outlive them.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T17:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "analysis_results_cache"

WATCHED = (
    "referral",
    "referral_event",
    "reoffence",
    "incident_extract",
    "person",
    "agency",
    "programme",
)
"""Every table the reoffending analysis reads (the cohort, the before/after counts, the
cut-off's latest extract, the programme's length for the landmark)."""

FORWARDS = [
    """
    CREATE TABLE analysis_data_change (
        backend integer PRIMARY KEY,
        changes bigint NOT NULL
    )
    """,
    """
    CREATE TABLE analysis_result (
        data_version bigint NOT NULL,
        request text NOT NULL,
        result bytea NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (data_version, request)
    )
    """,
    """
    CREATE FUNCTION analysis_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO analysis_data_change AS c (backend, changes)
        VALUES (pg_backend_pid(), 1)
        ON CONFLICT (backend) DO UPDATE SET changes = c.changes + 1;
        RETURN NULL;
    END
    $$
    """,
    *(
        statement
        for table in WATCHED
        for statement in (
            f"CREATE TRIGGER analysis_data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION analysis_data_changed()",
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER analysis_data_changed",
        )
    ),
]
BACKWARDS = [
    *(f"DROP TRIGGER IF EXISTS analysis_data_changed ON {table}" for table in WATCHED),
    "DROP FUNCTION IF EXISTS analysis_data_changed()",
    "DROP TABLE IF EXISTS analysis_result",
    "DROP TABLE IF EXISTS analysis_data_change",
]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="analysis", description=DESCRIPTION)

    async def add_cache():
        for statement in FORWARDS:
            await RawTable.raw(statement)

    async def drop_cache():
        for statement in BACKWARDS:
            await RawTable.raw(statement)

    manager.add_raw(add_cache)
    manager.add_raw_backwards(drop_cache)
    return manager
