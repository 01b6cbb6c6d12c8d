"""An index for the facilitators' caseload, paged (issue 15 part 6).

A caseload section past first contact lists its referrals by how long they have been at
their status (``status_on``, then ``received_on``, then ``id``), fifty a page. With only
``referral_status_received`` each page sorted every referral at the status (90,000
contacted at a million referrals) to keep fifty, and a later page more; this one hands
them over in order, and merges the engaged and started of the "engaged" section.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "caseload_reached_index"

FORWARDS = [
    "CREATE INDEX referral_status_reached ON referral (status, status_on, received_on, id)",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS referral_status_reached",
]


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
