"""A register save that changes a mark holds its session's quarter's shared lock until it
commits (taken with the marks' write, not by a statement of its own), so a quarter being
locked waits for it; a save that changes nothing takes no quarter's lock."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest

from programme.delivery import services
from programme.delivery.rules import Mark
from programme.delivery.schemas import AttendanceMark
from programme.platform import database
from programme.platform.accounts.services import principal_for
from programme.platform.clock import today
from programme.platform.database import engine
from programme.platform.locked_quarters.queries import LOCK_KEY
from programme.platform.tables import Account

pytestmark = pytest.mark.anyio

SESSION_DAY = "2026-10-06"
ITS_QUARTER = "Q3 2026-27"


async def a_quarter_lock_would_wait(label: str) -> bool:
    """Whether locking the quarter (its exclusive lock) would have to wait right now."""
    other = await asyncpg.connect(database.database_url())
    try:
        sql = f"SELECT pg_try_advisory_lock({LOCK_KEY}) FROM (SELECT $1::text AS label) q"
        if not await other.fetchval(sql, label):
            return True
        await other.execute("SELECT pg_advisory_unlock_all()")
        return False
    finally:
        await other.close()


async def test_a_changing_save_holds_its_quarter_until_it_commits(
    client, fran, group, make_referrals, add_members, add_session
):
    members = await make_referrals(3)
    await add_members(group, members)
    account = await Account.select(Account.id).where(Account.username == "fran").first()
    principal = await principal_for(account["id"])
    assert principal is not None
    session_id = UUID(await add_session(group, 1, SESSION_DAY))
    first = [AttendanceMark(UUID(p), Mark.attended) for p in members]
    corrected = [AttendanceMark(UUID(p), Mark.absent) for p in members]

    for register, changes in ((first, True), (first, False), (corrected, True)):
        async with engine().transaction():
            await services.save_register(session_id, register, principal, today())
            assert await a_quarter_lock_would_wait(ITS_QUARTER) is changes
        assert not await a_quarter_lock_would_wait(ITS_QUARTER)
