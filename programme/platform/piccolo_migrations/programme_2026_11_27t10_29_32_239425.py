"""One sign-in throttle row per (scope, username, address).

A separate migration because raw SQL runs before a migration's column changes,
and this index needs the columns the previous one adds. Piccolo's tables cannot
declare a unique index over several columns, hence raw SQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T10:29:32:239425"
VERSION = "1.38.0"
DESCRIPTION = "login_throttle_unique_record"


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="programme", description=DESCRIPTION)

    async def unique_record():
        await RawTable.raw(
            "CREATE UNIQUE INDEX login_throttle_record"
            " ON login_throttle (scope, username, address)"
        )

    async def drop_unique_record():
        await RawTable.raw("DROP INDEX IF EXISTS login_throttle_record")

    manager.add_raw(unique_record)
    manager.add_raw_backwards(drop_unique_record)
    return manager
