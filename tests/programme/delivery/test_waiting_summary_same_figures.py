"""The dashboard's waiting-list figures are counted in PostgreSQL (issue 15 part 6: at a
million referrals the whole list, 50,000 rows made into Python objects to be counted,
was half of that part's time). They must be the very figures the waiting list itself
works out from its rows (``services._waiting``, which ``GET /programme/waiting-list``
reads): the count, the median days waiting (the mean of the middle two for an even
count) and the longest, on the benchmark's synthetic data, for an odd and an even
count, on several days, and when nobody waits.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from programme.delivery import services
from programme.delivery.queries import _WAITING
from programme.platform import database

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[3] / "bench"


@pytest.fixture
async def national(clean_database):
    sys.path.insert(0, str(BENCH))
    try:
        from national_data import generate
    finally:
        sys.path.remove(str(BENCH))
    connection = await asyncpg.connect(**database.engine().config)
    try:
        await generate(
            connection, 3_000, 1_000, date(2021, 7, 1), date(2026, 6, 30), date(2026, 9, 30)
        )
    finally:
        await connection.close()


async def _from_the_list(today: date) -> tuple[int, float | None, int | None]:
    _, days, median = await services._waiting(today)
    return len(days), median, days[-1] if days else None


async def _summary(today: date) -> tuple[int, float | None, int | None]:
    summary = await services.waiting_summary(today)
    assert summary.people is None
    return summary.count, summary.median_days_waiting, summary.longest_days_waiting


async def _drop_one_waiting() -> None:
    """One fewer waiting (one of them marked as started), so the count changes parity."""
    await database.fetch(
        f"UPDATE referral SET status = 'started' WHERE id = (SELECT r.id {_WAITING} LIMIT 1)"
    )


async def test_the_summary_is_the_lists_own_figures(national):
    seen_parity = set()
    for _ in range(2):
        for today in (date(2026, 9, 30), date(2026, 10, 1), date(2027, 3, 31)):
            expected = await _from_the_list(today)
            got = await _summary(today)
            assert got == expected, today
            assert type(got[1]) is type(expected[1]) and type(got[2]) is type(expected[2])
            seen_parity.add(expected[0] % 2)
        assert expected[0] > 20
        await _drop_one_waiting()
    assert seen_parity == {0, 1}


async def test_nobody_waiting_is_a_count_of_nought_and_no_median(clean_database):
    today = date(2026, 9, 30)
    assert await _summary(today) == await _from_the_list(today) == (0, None, None)
    assert await _summary(today + timedelta(days=1)) == (0, None, None)
