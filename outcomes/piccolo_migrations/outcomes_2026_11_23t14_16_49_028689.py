"""One feedback per victim per stage, enforced by the database."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T14:16:49:028689"
VERSION = "1.38.0"
DESCRIPTION = "one_feedback_per_stage"

FORWARDS = [
    "CREATE UNIQUE INDEX feedback_one_per_stage ON feedback (victim, stage)",
    "CREATE INDEX feedback_collected_on ON feedback (collected_on)",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS feedback_collected_on",
    "DROP INDEX IF EXISTS feedback_one_per_stage",
]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="outcomes", description=DESCRIPTION)

    async def add_indexes():
        for statement in FORWARDS:
            await RawTable.raw(statement)

    async def drop_indexes():
        for statement in BACKWARDS:
            await RawTable.raw(statement)

    manager.add_raw(add_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
