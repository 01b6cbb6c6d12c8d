"""The cohort table kept by triggers reads, through the analysis's own read, the very values
the cohort query derives from the events and incidents, after every kind of write, at
several cut-offs.

The reference is the query as the analysis ran it before the table (``COHORT_SQL`` with
its dates sent as whole numbers); the writes go in as raw SQL, as any write path would
(the API, an import's COPY, the register, a correction in psql), since the triggers,
not the services, keep the table."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from analysis import queries
from analysis.services import load_cohort
from programme.platform import database
from tests.analysis.test_cohort_read_as_columns import imported  # noqa: F401

pytestmark = pytest.mark.anyio

CUT_OFFS = (
    date(2025, 1, 20),
    date(2025, 2, 10),
    date(2025, 3, 1),
    date(2025, 8, 1),
    date(2026, 6, 1),
    date(2031, 1, 1),
)


def _parts(day: str, name: str) -> str:
    return (
        f"CASE WHEN isfinite({day}) THEN extract(year FROM {day})::int END AS {name}_year, "
        f"CASE WHEN isfinite({day}) THEN (extract(month FROM {day}) * 100 "
        f"+ extract(day FROM {day}))::int END AS {name}_month_day"
    )


DERIVED_COPY_SQL = queries.COHORT_SQL.replace(
    "SELECT r.person, r.received_on, p.date_of_birth, p.gender,",
    f"SELECT r.person, {_parts('p.date_of_birth', 'born')}, "
    f"{_parts('r.received_on', 'received')}, p.gender,",
)
"""The cohort worked out from the events and incidents, as the analysis read it before."""
assert DERIVED_COPY_SQL != queries.COHORT_SQL


async def derived(as_of: date) -> list[tuple[str, list[object]]]:
    """The derived query's columns, each value as ``comparable`` gives it."""
    async with database.connection() as connection:
        records = await connection.fetch(DERIVED_COPY_SQL, as_of)
    columns = list(records[0].keys()) if records else list(queries.COHORT_COLUMNS)
    return _comparable(columns, [[record[c] for record in records] for c in columns])


async def kept(as_of: date) -> list[tuple[str, list[object]]]:
    """What the analysis reads from the table (``load_cohort``: the binary COPY of
    ``COHORT_COPY_SQL`` decoded), each value as ``comparable`` gives it."""
    frame, _ = await load_cohort(as_of)
    columns = list(frame.columns)
    return _comparable(columns, [frame[c].tolist() for c in columns])


def _value(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_, str)):
        return value if isinstance(value, str) else bool(value)
    return float(value)  # type: ignore[arg-type]


def _comparable(names: list[str], values: list[list[object]]) -> list[tuple[str, list[object]]]:
    """Missing as None, numbers as floats (a whole-number column with a gap reads as
    floats), and the person as the number of their first appearance: the analysis reads
    a whole number per person, which only has to tell the same people apart."""
    out = []
    for name, column in zip(names, values, strict=True):
        if name == "person":
            codes = pd.factorize(pd.Series(column, dtype=str))[0]
            out.append((name, [float(code) for code in codes]))
        else:
            out.append((name, [_value(v) for v in column]))
    return out


DERIVED_BEFORE_AFTER_SQL = """
SELECT count(*) FILTER (WHERE before > 0) AS any_before,
       count(*) FILTER (WHERE after > 0) AS any_after,
       count(*) FILTER (WHERE before > 0 AND after = 0) AS stopped,
       count(*) FILTER (WHERE before = 0 AND after > 0) AS started,
       coalesce(sum(before), 0)::int AS incidents_before,
       coalesce(sum(after), 0)::int AS incidents_after,
       count(*) AS n
FROM (
    SELECT r.id,
           count(o.id) FILTER (WHERE o.offence_date >= r.received_on - $2::int
                                 AND o.offence_date < r.received_on) AS before,
           count(o.id) FILTER (WHERE o.offence_date > r.received_on
                                 AND o.offence_date <= r.received_on + $2::int) AS after
    FROM referral r
    LEFT JOIN reoffence o ON o.person = r.person
    WHERE r.received_on <= $1
    GROUP BY r.id
) windows
"""
"""The before/after counts from the referral table, every referral grouped, as they were
read before the cohort table (and before only referrals with an incident were grouped)."""
assert "reoffending_cohort" not in DERIVED_BEFORE_AFTER_SQL


async def assert_same_everywhere(step: str) -> None:
    for as_of in CUT_OFFS:
        assert await kept(as_of) == await derived(as_of), f"after {step}, cut-off {as_of}"
        async with database.connection() as connection:
            for window in (30, 182, 365):
                before = await connection.fetchrow(DERIVED_BEFORE_AFTER_SQL, as_of, window)
                now = await connection.fetchrow(queries.BEFORE_AFTER_SQL, as_of, window)
                assert dict(now) == dict(before), f"before/after, {step}, {as_of}, {window}"


async def execute(*statements: str) -> None:
    async with database.connection() as connection, connection.transaction():
        for statement in statements:
            await connection.execute(statement)


NTH_REFERRAL = "(SELECT id FROM referral ORDER BY reference OFFSET {} LIMIT 1)"
NTH_PERSON = "(SELECT person FROM referral ORDER BY reference OFFSET {} LIMIT 1)"


async def test_the_table_is_the_query_after_every_kind_of_write(imported):  # noqa: F811
    async with database.connection() as connection:
        count = await connection.fetchval("SELECT count(*) FROM reoffending_cohort")
        engaged = await connection.fetchval(
            "SELECT count(*) FROM reoffending_cohort WHERE engaged_on IS NOT NULL"
        )
        reoffended = await connection.fetchval(
            "SELECT count(*) FROM reoffending_cohort WHERE reoffended_on IS NOT NULL"
        )
    assert count == 60 and engaged > 0 and reoffended > 0
    await assert_same_everywhere("the imports")

    steps = {
        "an earlier engagement recorded": [
            f"INSERT INTO referral_event (referral, type, occurred_on, source) "
            f"VALUES ({NTH_REFERRAL.format(0)}, 'engaged', DATE '2025-01-10', 'manual')"
        ],
        "completions for several referrals in one statement": [
            "INSERT INTO referral_event (referral, type, occurred_on, source) "
            "SELECT id, 'completed', received_on + 120, 'register' FROM referral "
            "WHERE reference < 'AN-020'"
        ],
        "an engagement voided": [
            f"UPDATE referral_event SET voided_at = now() WHERE referral = {NTH_REFERRAL.format(2)}"
            " AND type = 'engaged'"
        ],
        "a completion's date corrected": [
            f"UPDATE referral_event SET occurred_on = occurred_on + 400 "
            f"WHERE referral = {NTH_REFERRAL.format(4)} AND type = 'completed'"
        ],
        "a step's type corrected to an engagement": [
            f"UPDATE referral_event SET type = 'engaged' WHERE id = (SELECT min(id) FROM "
            f"referral_event WHERE referral = {NTH_REFERRAL.format(5)} AND type <> 'engaged')"
        ],
        "a completion deleted": [
            f"DELETE FROM referral_event WHERE referral = {NTH_REFERRAL.format(6)}"
            " AND type = 'completed'"
        ],
        "incidents added": [
            "INSERT INTO reoffence (id, person, offence_date, fingerprint) "
            "SELECT gen_random_uuid(), person, received_on + 30, 'extra-' || reference "
            "FROM referral WHERE reference LIKE 'AN-0_1'"
        ],
        "an incident on the day of the referral and one before it": [
            f"INSERT INTO reoffence (id, person, offence_date, fingerprint) VALUES "
            f"(gen_random_uuid(), {NTH_PERSON.format(7)}, "
            f"(SELECT received_on FROM referral ORDER BY reference OFFSET 7 LIMIT 1), 'same'),"
            f"(gen_random_uuid(), {NTH_PERSON.format(8)}, DATE '2020-01-01', 'before')"
        ],
        "an incident's date corrected": [
            "UPDATE reoffence SET offence_date = offence_date + 200 "
            "WHERE fingerprint = 'extra-AN-011'"
        ],
        "an incident deleted": ["DELETE FROM reoffence WHERE fingerprint = 'extra-AN-021'"],
        "an incident at an infinite date": [
            f"INSERT INTO reoffence (id, person, offence_date, fingerprint) VALUES "
            f"(gen_random_uuid(), {NTH_PERSON.format(9)}, 'infinity', 'never')"
        ],
        "a date of birth and a gender corrected": [
            f"UPDATE person SET date_of_birth = DATE '1990-02-28', gender = 'female' "
            f"WHERE id = {NTH_PERSON.format(10)}"
        ],
        "infinite dates of birth": [
            f"UPDATE person SET date_of_birth = 'infinity' WHERE id = {NTH_PERSON.format(11)}",
            f"UPDATE person SET date_of_birth = '-infinity' WHERE id = {NTH_PERSON.format(12)}",
        ],
        "details of referrals no longer recorded": [
            "UPDATE referral SET risk_level = NULL, prior_incidents = NULL, "
            "substance_misuse = NULL, local_authority = 'Rotherham' "
            "WHERE reference BETWEEN 'AN-030' AND 'AN-035'",
            "UPDATE referral SET substance_misuse = true, mental_health = false "
            "WHERE reference BETWEEN 'AN-036' AND 'AN-040'",
        ],
        "a referral's received date corrected": [
            f"UPDATE referral SET received_on = received_on - 45 "
            f"WHERE id = {NTH_REFERRAL.format(13)}",
            f"UPDATE referral SET received_on = DATE '2026-05-31' "
            f"WHERE id = {NTH_REFERRAL.format(14)}",
        ],
        "a referral moved to another person": [
            # Both closed: a person has one open referral at a time.
            f"UPDATE referral SET status = 'closed' "
            f"WHERE id IN ({NTH_REFERRAL.format(1)}, {NTH_REFERRAL.format(15)})",
            f"UPDATE referral SET person = {NTH_PERSON.format(1)} "
            f"WHERE id = {NTH_REFERRAL.format(15)}",
        ],
        "an agency renamed": ["UPDATE agency SET name = 'Renamed Police'"],
        "a referral deleted": [
            f"DELETE FROM referral_event WHERE referral = {NTH_REFERRAL.format(16)}",
            f"DELETE FROM referral WHERE id = {NTH_REFERRAL.format(16)}",
        ],
        "a step written with the triggers switched off (a bulk load)": [
            "SET LOCAL session_replication_role = replica",
            f"INSERT INTO referral_event (referral, type, occurred_on, source) "
            f"VALUES ({NTH_REFERRAL.format(17)}, 'engaged', DATE '2025-01-25', 'import')",
        ],
        "every incident removed": ["TRUNCATE reoffence"],
    }
    for step, statements in steps.items():
        await execute(*statements)
        await assert_same_everywhere(step)


async def test_the_backfill_rebuilds_the_same_rows(imported):  # noqa: F811
    await execute(
        f"UPDATE referral_event SET voided_at = now() WHERE referral = {NTH_REFERRAL.format(0)}"
    )
    async with database.connection() as connection:
        kept = await connection.fetch("SELECT * FROM reoffending_cohort ORDER BY referral")
        await connection.execute("TRUNCATE reoffending_cohort")
        # The migration's backfill, as it ran.
        await connection.execute(
            "SELECT reoffending_cohort_refresh(ARRAY(SELECT id FROM referral))"
        )
        rebuilt = await connection.fetch("SELECT * FROM reoffending_cohort ORDER BY referral")
    assert [tuple(r) for r in rebuilt] == [tuple(r) for r in kept]
    await assert_same_everywhere("the rebuild")
