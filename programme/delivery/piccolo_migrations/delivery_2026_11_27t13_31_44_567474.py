"""One session of a kind per group per day.

Nineteen group sessions dated on one day would let one afternoon complete
someone; the database now refuses a second session of the same kind for a
group on a day. A database that already holds such sessions is not changed:
the migration stops, saying how many group-days to correct first, rather than
pick which session's register to throw away.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T13:31:44:567474"
VERSION = "1.38.0"
DESCRIPTION = "one_session_of_a_kind_per_day"

DUPLICATES = """
SELECT count(*) AS n FROM (
    SELECT 1 FROM programme_session GROUP BY "group", kind, held_on HAVING count(*) > 1
) twice
"""
FORWARDS = (
    "CREATE UNIQUE INDEX programme_session_one_a_day"
    ' ON programme_session ("group", kind, held_on)'
)
BACKWARDS = "DROP INDEX IF EXISTS programme_session_one_a_day"


class RawTable(Table):
    """Only a handle for running raw SQL inside the migration's transaction."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="delivery", description=DESCRIPTION)

    async def one_a_day():
        rows = await RawTable.raw(DUPLICATES)
        if rows and rows[0]["n"]:
            raise RuntimeError(
                f"{rows[0]['n']} group-days hold more than one session of a kind: "
                "move or remove the extra sessions, then migrate again"
            )
        await RawTable.raw(FORWARDS)

    async def drop_one_a_day():
        await RawTable.raw(BACKWARDS)

    manager.add_raw(one_a_day)
    manager.add_raw_backwards(drop_one_a_day)
    return manager
