"""At most one open referral per person, enforced by the database itself.

The service checks first and answers 409 with the open reference; this index
is what makes two simultaneous submissions for one person unable to both win.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T13:59:12:869411"
VERSION = "1.38.0"
DESCRIPTION = "one_open_referral_per_person"

FORWARDS = [
    """
    CREATE UNIQUE INDEX referral_one_open_per_person ON referral (person)
    WHERE status IN ('accepted', 'contacted', 'engaged', 'started')
    """,
    "CREATE INDEX referral_event_type_occurred_on ON referral_event (type, occurred_on)",
]

BACKWARDS = [
    "DROP INDEX IF EXISTS referral_event_type_occurred_on",
    "DROP INDEX IF EXISTS referral_one_open_per_person",
]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="referrals", description=DESCRIPTION)

    async def add_indexes():
        for statement in FORWARDS:
            await RawTable.raw(statement)

    async def drop_indexes():
        for statement in BACKWARDS:
            await RawTable.raw(statement)

    manager.add_raw(add_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
