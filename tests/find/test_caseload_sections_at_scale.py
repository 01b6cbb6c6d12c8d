"""A facilitator's caseload reads each section with a statement of its own (issue 15 part
6: the whole record and timeline of 2,000 referrals were built for lines that show five
fields). On the national benchmark's synthetic data (thousands of referrals at every
status), each section has the very referrals, in the same order, with the same names,
dates and totals as the referral list it replaced, and is audited the same way; and
holds the people who have waited longest, so that when a section has more than a page
shows, the most overdue are never the ones left out.
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
            connection, 6_000, 5_000, date(2021, 7, 1), date(2026, 6, 30), date(2026, 9, 30)
        )
        # A tenth received on one day, so ties in the order (broken by id) are exercised.
        await connection.execute(
            "UPDATE referral SET received_on = DATE '2026-06-30' WHERE reference LIKE '%1'"
        )
    finally:
        await connection.close()


def _name(view: ReferralNamedView) -> str:
    if view.restricted:
        return "Details withheld"
    return f"{view.first_name or ''} {view.last_name or ''}".strip()


async def _every(actor: Principal, status: Status) -> list[ReferralNamedView]:
    """Every referral at ``status``, through the referral list, page by page."""
    views: list[ReferralNamedView] = []
    while True:
        page = await referrals.list_referrals(
            actor, ReferralFilters(status=status), 500, len(views), "k" * 64
        )
        views += [v for v in page.items if isinstance(v, ReferralNamedView)]
        if len(views) >= page.total or not page.items:
            return views


@pytest.mark.parametrize("role", ["facilitator", "admin"])
async def test_each_section_holds_those_waiting_longest(national, role):
    """The referral list's own rows for the status, ordered by how long they have waited
    (since received, or since reaching the status; ties by id), the first ``limit``."""
    actor = Principal(id=uuid4(), username=f"bench-{role}", role=role)
    shown = 0
    for status in Status:
        every = await _every(actor, status)
        for waited_since in ("received_on", "status_on"):
            if waited_since == "received_on":
                every.sort(key=lambda v: (v.received_on, str(v.id)))
            else:
                every.sort(key=lambda v: (v.status_on, v.received_on, str(v.id)))
            for limit in (500, 7):
                before = await AuditEvent.count()
                lines, total = await referrals.caseload_section(actor, status, limit, waited_since)
                audited = (
                    await AuditEvent.select(AuditEvent.record_id, AuditEvent.detail)
                    .where(AuditEvent.id > 0)
                    .order_by(AuditEvent.id)
                    .offset(before)
                )
                assert total == len(every)
                expected = [
                    (v.id, v.reference, _name(v), v.received_on, v.status, v.status_on)
                    for v in every[:limit]
                ]
                got = [
                    (
                        line.id,
                        line.reference,
                        "Details withheld"
                        if line.restricted
                        else f"{line.first_name or ''} {line.last_name or ''}".strip(),
                        line.received_on,
                        line.status,
                        line.status_on,
                    )
                    for line in lines
                ]
                assert got == expected, (status, waited_since, limit)
                assert [row["record_id"] for row in audited] == [str(line.id) for line in lines]
                assert all('"named"' in str(row["detail"]) for row in audited)
                shown += len(lines)
    assert shown > 3_000
