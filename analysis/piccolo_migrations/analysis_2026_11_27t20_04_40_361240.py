"""The results cache also covers the monitors' dashboard: the tables it reads that the
reoffending analysis does not bump the same data version.

The dashboard (``services.dashboard``) reads returned referrals (quarterly counts and
referral quality), group places (the waiting list), victims' feedback and the locked
quarters (the quarterly table's 'reported' marks), besides the tables
``analysis_2026_11_27t17_40_00`` already watches. The same statement-level trigger,
``ENABLE ALWAYS`` for the same reason. A write to one of these also makes the next
reoffending analysis compute afresh: it cannot serve a wrong figure, only fewer from
the cache (these tables are written far less often than referral events).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T20:04:40:361240"
VERSION = "1.38.0"
DESCRIPTION = "dashboard_watched_tables"

WATCHED = ("returned_referral", "group_member", "feedback", "locked_quarter")

FORWARDS = [
    statement
    for table in WATCHED
    for statement in (
        f"CREATE TRIGGER analysis_data_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION analysis_data_changed()",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER analysis_data_changed",
    )
]
BACKWARDS = [f"DROP TRIGGER IF EXISTS analysis_data_changed ON {table}" for table in WATCHED]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="analysis", description=DESCRIPTION)

    async def watch():
        for statement in FORWARDS:
            await RawTable.raw(statement)

    async def unwatch():
        for statement in BACKWARDS:
            await RawTable.raw(statement)

    manager.add_raw(watch)
    manager.add_raw_backwards(unwatch)
    return manager
