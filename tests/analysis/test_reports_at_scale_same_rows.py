"""The referral-quality and victim-feedback statements rewritten for national scale (issue 15
part 5: counted per day first, the engaged referrals hashed once) give the very same rows
as the statements they replaced, on the national benchmark's synthetic data: thousands of
referrals over five years, returned referrals with one or two reasons (some replaced),
voided steps, and victims' feedback at
every stage.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from analysis import queries
from programme.platform import database
from programme.platform.crypto import cipher
from tests.analysis import earlier_report_statements as earlier

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[2] / "bench"
FIRST_DAY, LAST_DAY, CUT_OFF = date(2021, 7, 1), date(2026, 6, 30), date(2026, 9, 30)
RANGES = (
    (FIRST_DAY, LAST_DAY),
    (date(2024, 4, 1), date(2025, 3, 31)),
    (date(2025, 5, 17), date(2025, 5, 17)),
    (date(2030, 1, 1), date(2030, 12, 31)),
)


@pytest.fixture
async def national(clean_database):
    """The national benchmark's generator at 3,000 referrals, then some untidiness."""
    sys.path.insert(0, str(BENCH))
    try:
        from national_data import generate, generate_victims
    finally:
        sys.path.remove(str(BENCH))
    connection = await asyncpg.connect(**database.engine().config)
    try:
        await generate(connection, 3_000, 10_000, FIRST_DAY, LAST_DAY, CUT_OFF)
        await generate_victims(connection, CUT_OFF, cipher().encrypt)
        await connection.execute("UPDATE referral_event SET voided_at = now() WHERE id % 23 = 0")
        await connection.execute(
            "UPDATE returned_referral SET replaced = true WHERE fingerprint LIKE '%a'"
        )
    finally:
        await connection.close()


async def rows(statement: str, low: date, high: date) -> list[dict]:
    return [dict(r) for r in await database.fetch(statement, low, high)]


def in_order(found: list[dict]) -> list[dict]:
    return sorted(found, key=lambda r: tuple(str(v) for v in r.values()))


async def test_referral_quality_gives_the_same_rows(national):
    pairs = (
        (queries.QUALITY_SQL, earlier.QUALITY_SQL),
        (queries.QUALITY_BY_LOCAL_AUTHORITY_SQL, earlier.QUALITY_BY_LOCAL_AUTHORITY_SQL),
        (queries.QUALITY_OVER_RANGE_SQL["agency"], earlier.QUALITY_OVER_RANGE_AGENCY_SQL),
        (
            queries.QUALITY_OVER_RANGE_SQL["local_authority"],
            earlier.QUALITY_OVER_RANGE_LOCAL_AUTHORITY_SQL,
        ),
    )
    compared = 0
    for low, high in RANGES:
        for now, before in pairs:
            got, expected = await rows(now, low, high), await rows(before, low, high)
            # Ordered alike (group, then first day), and equal value for value and type.
            assert got == expected
            assert [[type(v) for v in r.values()] for r in got] == [
                [type(v) for v in r.values()] for r in expected
            ]
            compared += len(got)
    assert compared > 1_000


async def test_victim_feedback_gives_the_same_rows(national):
    compared = 0
    for low, high in (*RANGES, (date.min, date.max)):
        got = await rows(queries.FEEDBACK_SQL, low, high)
        expected = await rows(earlier.FEEDBACK_SQL, low, high)
        assert in_order(got) == in_order(expected)
        compared += sum(r["responded"] for r in got)
    assert compared > 1_000
