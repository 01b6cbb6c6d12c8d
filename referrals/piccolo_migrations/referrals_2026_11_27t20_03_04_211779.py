"""Indexes for the monitors' dashboard and the facilitators' caseload at national scale.

Measured at a million referrals (``bench/pages_at_scale.py``, bench/README.md):

- ``referral_event_engaged_counting``: the engaged steps that still count, with their
  day. Every statement that asks who engaged (the quarterly report's engagement
  cohort, referral quality, the waiting list, the register's checks) also asks
  ``voided_at IS NULL``, which ``referral_event_engaged`` (made before steps could be
  voided) cannot answer from the index: the quarterly cohort went back to reading and
  hashing 520,000 heap rows, spilling to disk (1.3 s of the dashboard's 1.6 s
  quarterly table), and the waiting list fetched each engaged referral's events from
  the heap. This one answers both from the index alone, so it replaces the old one.
- ``referral_status_received``: a caseload section is one status's newest referrals
  (``status = $1 ORDER BY received_on DESC, id LIMIT 500``); with only the status
  index, each sorted up to 90,000 referrals to keep 500.
- ``referral_engaged_waiting``: the waiting list (the dashboard's counts of it too)
  starts from every engaged referral; their rows lie all over the table (52,000 of
  them in 25,000 pages read one by one: 0.8 s of its 0.9 to 1.8 s), the index holds
  all it needs.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T20:03:04:211779"
VERSION = "1.38.0"
DESCRIPTION = "dashboard_and_caseload_indexes"

FORWARDS = [
    "CREATE INDEX referral_event_engaged_counting ON referral_event (referral)"
    " INCLUDE (occurred_on) WHERE type = 'engaged' AND voided_at IS NULL",
    "DROP INDEX IF EXISTS referral_event_engaged",
    "CREATE INDEX referral_status_received ON referral (status, received_on DESC, id)",
    "CREATE INDEX referral_engaged_waiting ON referral (id) INCLUDE (reference)"
    " WHERE status = 'engaged'",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS referral_engaged_waiting",
    "DROP INDEX IF EXISTS referral_status_received",
    "CREATE INDEX referral_event_engaged ON referral_event (referral) WHERE type = 'engaged'",
    "DROP INDEX IF EXISTS referral_event_engaged_counting",
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
