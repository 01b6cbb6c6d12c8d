"""A facilitator's caseload reads each section with a statement of its own (issue 15 part
6: the whole record and timeline of 2,000 referrals were built for lines that show five
fields). On the national benchmark's synthetic data (thousands of referrals at every
status), each section has the very referrals, in the same order, with the same names,
dates and totals as the referral list it replaced, and is audited the same way.
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


@pytest.mark.parametrize("role", ["facilitator", "admin"])
async def test_each_section_is_the_referral_list_for_its_status(national, role):
    actor = Principal(id=uuid4(), username=f"bench-{role}", role=role)
    shown = 0
    for status in Status:
        for limit in (500, 7):
            listed = await referrals.list_referrals(
                actor, ReferralFilters(status=status), limit, 0, "k" * 64
            )
            before = await AuditEvent.count()
            lines, total = await referrals.caseload_section(actor, status, limit)
            audited = (
                await AuditEvent.select(AuditEvent.record_id, AuditEvent.detail)
                .where(AuditEvent.id > 0)
                .order_by(AuditEvent.id)
                .offset(before)
            )
            assert total == listed.total
            expected = []
            for view in listed.items:
                assert isinstance(view, ReferralNamedView)
                expected.append(
                    (view.id, view.reference, _name(view), view.received_on, view.status,
                     view.status_on)
                )  # fmt: skip
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
            assert got == expected
            assert [row["record_id"] for row in audited] == [str(line.id) for line in lines]
            assert all('"named"' in str(row["detail"]) for row in audited)
            shown += len(lines)
    assert shown > 3_000
