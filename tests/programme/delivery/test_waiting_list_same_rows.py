"""The waiting list's statement, rewritten so PostgreSQL probes each engaged referral's
open group place in id order instead of hashing every group place (issue 15 part 6),
gives the very rows the statement it replaced gave, and the dashboard's summary the very
figures: on the national benchmark's synthetic data made untidy where the check matters
(engaged referrals with an open place, with a place they have left, with both, and with
engagements voided), and after places are given and left.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from programme.delivery import queries
from programme.platform import database

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[3] / "bench"

# The statement as it was before the rewrite (commit 54d95ec), word for word.
_EARLIER_WAITING = """
FROM referral r
JOIN LATERAL (
    SELECT max(occurred_on) AS engaged_on FROM referral_event
    WHERE referral = r.id AND type = 'engaged' AND voided_at IS NULL
) e ON true
WHERE r.status = 'engaged'
  AND NOT EXISTS (SELECT 1 FROM group_member m WHERE m.referral = r.id AND m.left_on IS NULL)
"""
EARLIER_WAITING_LIST = f"""
SELECT r.id, r.reference, e.engaged_on
{_EARLIER_WAITING}
ORDER BY e.engaged_on, r.reference
"""
EARLIER_WAITING_SUMMARY = f"""
WITH waiting AS (SELECT e.engaged_on {_EARLIER_WAITING})
SELECT count(*) AS count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY $1::date - engaged_on) AS median,
       max($1::date - engaged_on) AS longest
FROM waiting
"""

# Places for engaged referrals, picked by the first hex digit of their id: open ones,
# ones they have left, and for some both a left place and an open one.
_GIVE_PLACES = """
INSERT INTO group_member (id, "group", referral, joined_on, left_on)
SELECT gen_random_uuid(), (SELECT id FROM "group" ORDER BY id LIMIT 1), r.id,
       DATE '2026-07-01',
       CASE WHEN left(r.id::text, 1) IN ('4', '5', '6') THEN DATE '2026-08-01' END
FROM referral r
WHERE r.status = 'engaged' AND left(r.id::text, 1) IN ('1', '2', '3', '4', '5', '6')
"""
_BOTH = """
INSERT INTO group_member (id, "group", referral, joined_on, left_on)
SELECT gen_random_uuid(), (SELECT id FROM "group" ORDER BY id LIMIT 1), r.id,
       DATE '2026-08-02', NULL
FROM referral r WHERE r.status = 'engaged' AND left(r.id::text, 1) = '5'
"""
# Some leave the place they had: they wait again.
_LEAVE = """
UPDATE group_member SET left_on = DATE '2026-09-01'
WHERE left_on IS NULL AND left(referral::text, 1) = '2'
"""


@pytest.fixture
async def untidy(clean_database):
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
        await connection.execute(
            "UPDATE referral_event SET voided_at = now() WHERE type = 'engaged' AND id % 7 = 0"
        )
    finally:
        await connection.close()


async def _compare(today: date) -> int:
    got = [dict(r) for r in await database.fetch(queries.WAITING_LIST)]
    expected = [dict(r) for r in await database.fetch(EARLIER_WAITING_LIST)]
    assert got == expected
    (summary,) = await database.fetch(queries.WAITING_SUMMARY, today)
    (earlier,) = await database.fetch(EARLIER_WAITING_SUMMARY, today)
    assert dict(summary) == dict(earlier)
    assert [type(v) for v in summary.values()] == [type(v) for v in earlier.values()]
    return len(got)


async def test_the_waiting_list_gives_the_same_rows(untidy):
    today = date(2026, 9, 30)
    everyone = await _compare(today)
    assert everyone > 100

    given = await database.fetch(_GIVE_PLACES + " RETURNING referral, left_on")
    given += await database.fetch(_BOTH + " RETURNING referral, left_on")
    fewer = await _compare(today)
    # Those with an open place no longer wait; those who only left one still do.
    assert 0 < fewer < everyone
    open_places = {r["referral"] for r in given if r["left_on"] is None}
    assert fewer == everyone - len(open_places)

    await database.fetch(_LEAVE)
    again = await _compare(date(2027, 3, 31))
    assert fewer < again < everyone
