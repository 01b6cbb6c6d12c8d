"""A caseload section is paged (issue 15 part 6: at a million referrals a section held
80,000 people and the page showed the first 500 of each). On the national benchmark's
synthetic data, page after page of a section is every referral at its statuses, each
once, in the order of how long they have waited (the "engaged" section merging engaged
and started), with the section's total; a page past the last is the last; and only the
lines of the page asked for are audited as read.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from programme.platform import database
from programme.platform.accounts.schemas import Principal
from programme.platform.tables import AuditEvent
from referrals import services as referrals
from referrals.rules import Status
from referrals.schemas import ReferralNamedView
from referrals.services import ReferralFilters

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[2] / "bench"

SECTIONS = [
    ((Status.accepted,), "received_on"),
    ((Status.contacted,), "status_on"),
    ((Status.engaged, Status.started), "status_on"),
]


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
        # Many received, and many reaching their status, on one day: ties broken by id.
        await connection.execute(
            "UPDATE referral SET received_on = DATE '2026-06-30', status_on = DATE '2026-07-01'"
            " WHERE reference LIKE '%1' AND status IN ('accepted', 'engaged', 'started')"
        )
    finally:
        await connection.close()


async def _every(actor: Principal, statuses: tuple[Status, ...]) -> list[ReferralNamedView]:
    """Every referral at ``statuses``, through the referral list, page by page."""
    views: list[ReferralNamedView] = []
    for status in statuses:
        mine: list[ReferralNamedView] = []
        while True:
            page = await referrals.list_referrals(
                actor, ReferralFilters(status=status), 500, len(mine), "k" * 64
            )
            mine += [v for v in page.items if isinstance(v, ReferralNamedView)]
            if len(mine) >= page.total or not page.items:
                break
        views += mine
    return views


async def _audited_since(before: int) -> list[str]:
    rows = (
        await AuditEvent.select(AuditEvent.record_id)
        .where(AuditEvent.id > 0)
        .order_by(AuditEvent.id)
        .offset(before)
    )
    return [row["record_id"] for row in rows]


async def test_page_after_page_is_everyone_once_longest_waiting_first(national):
    actor = Principal(id=uuid4(), username="fran", role="facilitator")
    for statuses, waited_since in SECTIONS:
        every = await _every(actor, statuses)
        if waited_since == "received_on":
            every.sort(key=lambda v: (v.received_on, str(v.id)))
        else:
            every.sort(key=lambda v: (v.status_on, v.received_on, str(v.id)))
        assert len(every) > 3 * 40, statuses  # enough for several pages of 40
        pages = -(-len(every) // 40)
        shown = []
        for number in range(1, pages + 1):
            before = await AuditEvent.count()
            page = await referrals.caseload_page(actor, statuses, waited_since, number, 40)
            assert (page.page, page.pages, page.total) == (number, pages, len(every))
            assert len(page.lines) == (40 if number < pages else len(every) - 40 * (pages - 1))
            # Only the lines of this page are audited as read, each once.
            assert await _audited_since(before) == [str(line.id) for line in page.lines]
            shown += page.lines
        assert [(line.id, line.status, line.status_on) for line in shown] == [
            (v.id, v.status, v.status_on) for v in every
        ], statuses


async def test_a_page_past_the_last_is_the_last_and_before_the_first_is_the_first(national):
    actor = Principal(id=uuid4(), username="fran", role="facilitator")
    statuses, waited_since = SECTIONS[0]
    last = await referrals.caseload_page(actor, statuses, waited_since, 10**6, 50)
    assert last.page == last.pages > 1
    again = await referrals.caseload_page(actor, statuses, waited_since, last.pages, 50)
    assert [line.id for line in last.lines] == [line.id for line in again.lines]
    first = await referrals.caseload_page(actor, statuses, waited_since, 0, 50)
    assert first.page == 1
    assert len(first.lines) == 50


async def test_an_empty_section_is_one_empty_page(clean_database):
    actor = Principal(id=uuid4(), username="fran", role="facilitator")
    before = await AuditEvent.count()
    page = await referrals.caseload_page(actor, (Status.contacted,), "status_on", 3, 50)
    assert (page.lines, page.total, page.page, page.pages) == ([], 0, 1, 1)
    assert await AuditEvent.count() == before
