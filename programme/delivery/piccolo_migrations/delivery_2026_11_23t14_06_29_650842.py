"""Register constraints the database enforces.

One mark per participant per session (so two facilitators saving one register
at once cannot create duplicates), one session per number per group, one open
group place per referral.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T14:06:29:650842"
VERSION = "1.38.0"
DESCRIPTION = "register_constraints"

FORWARDS = [
    "CREATE UNIQUE INDEX attendance_one_mark ON attendance (session, referral)",
    "CREATE UNIQUE INDEX programme_session_number ON programme_session (\"group\", kind, number)",
    "CREATE UNIQUE INDEX group_facilitator_once ON group_facilitator (\"group\", account)",
    "CREATE UNIQUE INDEX group_member_one_open_place ON group_member (referral)"
    " WHERE left_on IS NULL",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS group_member_one_open_place",
    "DROP INDEX IF EXISTS group_facilitator_once",
    "DROP INDEX IF EXISTS programme_session_number",
    "DROP INDEX IF EXISTS attendance_one_mark",
]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="delivery", description=DESCRIPTION)

    async def add_constraints():
        for statement in FORWARDS:
            await RawTable.raw(statement)

    async def drop_constraints():
        for statement in BACKWARDS:
            await RawTable.raw(statement)

    manager.add_raw(add_constraints)
    manager.add_raw_backwards(drop_constraints)
    return manager
