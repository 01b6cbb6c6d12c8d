"""The reoffending analysis answers the same question on unchanged data from its cache,
and any write to what it reads (referrals, their events, people, agencies, incidents,
incident extracts, the programme) means the next answer is computed afresh.

The cache lives in PostgreSQL (its version bumped by triggers, its results in a table),
so every server process sees the same: the writes here come from other connections
(other server processes, as far as the database can tell).
"""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from analysis import services
from analysis.rules import AnalysisRequest
from programme.platform import database
from tests.analysis.test_reoffending_analysis import cohort_files
from tests.builders import inspire

pytestmark = pytest.mark.anyio

TODAY = date(2026, 6, 2)
REQUEST = AnalysisRequest(
    horizon_days=182,
    as_of=date(2026, 6, 1),
    group_by="engaged",
    covariates=("risk_level",),
    landmark_days=60,
)
WATCHED = (
    "referral",
    "referral_event",
    "reoffence",
    "incident_extract",
    "person",
    "agency",
    "programme",
)


@pytest.fixture
async def imported(tmp_path, clean_database):
    referral_file, incident_file, _ = cohort_files(tmp_path)
    result = inspire("import", "referrals", str(referral_file), "--create-agencies")
    assert result.returncode == 0, result.stderr
    result = inspire("import", "reoffending", str(incident_file))
    assert result.returncode == 0, result.stderr


async def other_connection() -> asyncpg.Connection:
    return await asyncpg.connect(**database.engine().config)


async def analyse(threshold: int = 5):
    before = (services.RESULTS_CACHE.served, services.RESULTS_CACHE.computed)
    result = await services.analyse(REQUEST, TODAY, threshold)
    served = services.RESULTS_CACHE.served - before[0]
    computed = services.RESULTS_CACHE.computed - before[1]
    assert served + computed == 1
    return result, "cache" if served else "computed"


async def test_the_same_question_on_unchanged_data_is_answered_from_the_cache(imported):
    first, how = await analyse()
    assert how == "computed"
    second, how = await analyse()
    assert how == "cache"
    assert second == first
    # Another threshold publishes the same stored figures differently: still the cache.
    unsuppressed, how = await analyse(threshold=1)
    assert how == "cache"
    assert unsuppressed.n == 60 and first.n == 60
    # Another question is computed.
    other = await services.analyse(AnalysisRequest(horizon_days=120, as_of=REQUEST.as_of), TODAY, 5)
    assert other.horizon_days == 120


async def _first_column(connection: asyncpg.Connection, table: str) -> str:
    return await connection.fetchval(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
        " AND column_name <> 'id' ORDER BY ordinal_position LIMIT 1",
        table,
    )


@pytest.mark.parametrize("table", WATCHED)
async def test_a_write_to_anything_the_analysis_reads_means_computing_again(imported, table):
    await analyse()
    assert (await analyse())[1] == "cache"
    connection = await other_connection()
    try:
        column = await _first_column(connection, table)
        # A real row rewritten (where the table has one), from another connection.
        await connection.execute(
            f'UPDATE "{table}" SET "{column}" = "{column}"'
            f' WHERE ctid = (SELECT ctid FROM "{table}" LIMIT 1)'
        )
    finally:
        await connection.close()
    assert (await analyse())[1] == "computed"
    assert (await analyse())[1] == "cache"


async def test_a_new_incident_changes_the_figures_served(imported, tmp_path):
    before, _ = await analyse(threshold=1)
    # One more person reoffends within the horizon: AN-001 (not engaged, none before).
    extra = tmp_path / "more.csv"
    extra.write_text("reference,offence_date\nAN-001,2025-02-20\n")
    result = inspire("import", "reoffending", str(extra))
    assert result.returncode == 0, result.stderr
    after, how = await analyse(threshold=1)
    assert how == "computed"
    assert after.events == before.events + 1


async def test_inserts_deletes_and_bulk_loads_past_the_triggers_still_count(imported):
    connection = await other_connection()
    try:
        versions = [await connection.fetchval("SELECT sum(changes) FROM analysis_data_change")]
        await connection.execute("DELETE FROM reoffence WHERE false")
        versions.append(await connection.fetchval("SELECT sum(changes) FROM analysis_data_change"))
        async with connection.transaction():
            # How bulk loads and the tests' emptying switch triggers off: not these.
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute("TRUNCATE reoffence")
        versions.append(await connection.fetchval("SELECT sum(changes) FROM analysis_data_change"))
    finally:
        await connection.close()
    assert versions[0] < versions[1] < versions[2]


async def test_an_uncommitted_write_does_not_move_the_version_until_it_commits(imported):
    before, _ = await analyse(threshold=1)
    connection = await other_connection()
    try:
        transaction = connection.transaction()
        await transaction.start()
        # AN-000 reoffended within the horizon (see cohort_files): one reoffence fewer.
        await connection.execute(
            "DELETE FROM reoffence o USING referral r"
            " WHERE o.person = r.person AND r.reference = 'AN-000'"
        )
        # Not committed: everyone else still reads the old data, so the cache still holds.
        assert (await analyse())[1] == "cache"
        await transaction.commit()
    finally:
        await connection.close()
    result, how = await analyse(threshold=1)
    assert how == "computed"
    assert result.events == before.events - 1
