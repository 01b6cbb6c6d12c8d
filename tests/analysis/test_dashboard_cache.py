"""The monitors' dashboard answers a second view on unchanged data from the results cache,
with the very figures it worked out, and any write to a table it reads (from any
connection: another server process, an import) means the next view works them out again.
"""

from __future__ import annotations

from datetime import date

import pytest

from analysis import services
from programme.platform.quarters import Quarter
from tests.analysis.test_results_cache import WATCHED, _first_column, imported, other_connection

pytestmark = pytest.mark.anyio

__all__ = ["imported"]  # the fixture, used by name below

TODAY = date(2026, 6, 2)
FIRST, LAST = Quarter.parse("Q1 2024-25"), Quarter.parse("Q1 2026-27")
DASHBOARD_ALSO_READS = ("returned_referral", "group_member", "feedback", "locked_quarter")


async def view(today: date = TODAY, threshold: int = 5):
    before = (services.DASHBOARD_CACHE.served, services.DASHBOARD_CACHE.computed)
    board = await services.dashboard(FIRST, LAST, today, threshold)
    served = services.DASHBOARD_CACHE.served - before[0]
    computed = services.DASHBOARD_CACHE.computed - before[1]
    assert served + computed == 1
    return board, "cache" if served else "computed"


async def test_a_second_view_is_the_same_dashboard_from_the_cache(imported):
    first, how = await view()
    assert how == "computed"
    assert first.quarterly.rows[-1]["referrals"] > 0
    second, how = await view()
    assert how == "cache"
    assert second == first
    # Another day (the waiting list counts days to it) or threshold is another dashboard.
    assert (await view(today=date(2026, 6, 3)))[1] == "computed"
    unsuppressed, how = await view(threshold=1)
    assert how == "computed"
    assert unsuppressed.suppression_threshold == 1


@pytest.mark.parametrize("table", WATCHED + DASHBOARD_ALSO_READS)
async def test_a_write_to_anything_the_dashboard_reads_means_working_it_out_again(imported, table):
    await view()
    assert (await view())[1] == "cache"
    connection = await other_connection()
    try:
        column = await _first_column(connection, table)
        # A real row rewritten where the table has one; where it has none, the statement
        # still counts (a statement-level trigger cannot tell).
        await connection.execute(
            f'UPDATE "{table}" SET "{column}" = "{column}"'
            f' WHERE ctid = (SELECT ctid FROM "{table}" LIMIT 1)'
        )
    finally:
        await connection.close()
    assert (await view())[1] == "computed"
    assert (await view())[1] == "cache"


async def test_a_voided_step_changes_the_figures_served(imported):
    before, _ = await view(threshold=1)
    connection = await other_connection()
    try:
        voided = await connection.execute(
            "UPDATE referral_event SET voided_at = now()"
            " WHERE id = (SELECT min(id) FROM referral_event WHERE type = 'accepted'"
            "             AND occurred_on BETWEEN $1 AND $2)",
            FIRST.first_day,
            LAST.last_day,
        )
    finally:
        await connection.close()
    assert voided == "UPDATE 1"
    after, how = await view(threshold=1)
    assert how == "computed"
    assert after.quarterly.rows[-1]["accepted"] == before.quarterly.rows[-1]["accepted"] - 1
