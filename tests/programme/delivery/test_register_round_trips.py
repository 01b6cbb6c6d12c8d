"""Saving a register costs a handful of round trips to the database, however many
people are on it and whatever their marks change: counted, statement by statement, with
asyncpg's query logger on every pooled connection (a count, never a timing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import pytest

from programme.delivery import services
from programme.delivery.rules import PRESENT, Mark
from programme.delivery.schemas import AttendanceMark
from programme.platform import database
from programme.platform.accounts.schemas import Principal
from programme.platform.accounts.services import principal_for
from programme.platform.clock import today
from programme.platform.tables import Account, AuditEvent
from referrals.tables import ParticipantAlert, Referral, ReferralEvent

pytestmark = pytest.mark.anyio

MOST_ROUND_TRIPS = 10
"""For a 12-person register, corrections included (issue 15): BEGIN and COMMIT, and the
pool's reset of the connection when it is given back, count too. Counted on a connection
that has saved a register before: asyncpg looks up each array type the first time a
connection meets it (three statements, once in the connection's life)."""

# Every line moves one mark on between the two (attended -> late -> absent -> excused ->
# attended): people start, are un-started and are re-dated, and every line is corrected.
NEXT = {Mark.attended: Mark.late, Mark.late: Mark.absent, Mark.absent: Mark.excused,
        Mark.excused: Mark.attended}  # fmt: skip
REGISTER_A = [Mark.attended] * 6 + [Mark.late] * 2 + [Mark.absent] * 2 + [Mark.excused] * 2
REGISTER_B = [NEXT[mark] for mark in REGISTER_A]


@pytest.fixture
async def statements(app) -> AsyncIterator[list[str]]:
    """Every statement any pooled connection sends while the test runs."""
    logged: list[str] = []

    async def attach(connection) -> None:
        connection.add_query_logger(lambda record: logged.append(record.query))

    engine = database.engine()
    await engine.close_connection_pool()
    # One connection: the one the warm-up save prepared, whatever runs before the count.
    await engine.start_connection_pool(min_size=1, max_size=1, init=attach)
    try:
        yield logged
    finally:
        await engine.close_connection_pool()
        await engine.start_connection_pool(min_size=0, max_size=app.state.settings.pool_max_size)


@pytest.fixture
async def twelve(group, make_referrals, add_members, add_session, mark):
    """Twelve engaged members, each marked excused on a one-to-one the day after they
    engaged (which counts towards nothing): the save that warms the connection."""
    ids = await make_referrals(12)
    await add_members(group, ids)
    warm_up = await add_session(group, 1, "2026-10-03", kind="one_to_one")
    assert (await mark(warm_up, dict.fromkeys(ids, "excused"))).status_code == 200
    return ids


@pytest.fixture
async def fran_principal(fran) -> Principal:
    account = await Account.select(Account.id).where(Account.username == "fran").first()
    principal = await principal_for(account["id"])
    assert principal is not None
    return principal


async def saved(statements, session_id, people, marks, principal) -> list[str]:
    """The statements one ``save_register`` call sends, the connection's reset included."""
    await asyncio.sleep(0.05)  # loggers run via call_soon: let earlier ones land first
    statements.clear()
    register = [AttendanceMark(UUID(p), m) for p, m in zip(people, marks, strict=True)]
    result = await services.save_register(session_id, register, principal, today())
    await asyncio.sleep(0.05)
    assert sorted((str(line.referral_id), line.status) for line in result.marks) == sorted(
        (p, m.value) for p, m in zip(people, marks, strict=True)
    )
    return [" ".join(s.split())[:90] for s in statements]


async def test_a_twelve_person_register_and_its_correction_take_at_most_ten_round_trips(
    statements, group, twelve, add_session, fran_principal
):
    session_id = await add_session(group, 1, "2026-10-06")
    first = await saved(statements, session_id, twelve, REGISTER_A, fran_principal)
    assert any(s.strip().upper().startswith("BEGIN") for s in first), first  # counting works
    assert len(first) <= MOST_ROUND_TRIPS, first
    assert await ReferralEvent.count().where(ReferralEvent.type == "started") == 8

    corrected = await saved(statements, session_id, twelve, REGISTER_B, fran_principal)
    assert len(corrected) <= MOST_ROUND_TRIPS, corrected
    # Corrections: all 12 lines, each audited with its earlier mark.
    updates = await AuditEvent.select(AuditEvent.detail).where(
        (AuditEvent.record_type == "attendance") & (AuditEvent.action == "update")
    ).output(load_json=True)  # fmt: skip
    assert sorted((u["detail"]["was"], u["detail"]["mark"]) for u in updates) == sorted(
        (a.value, b.value) for a, b in zip(REGISTER_A, REGISTER_B, strict=True)
    )
    # The two absent now (were late) are un-started, the two attended now (were
    # excused) start: still eight started.
    started = await ReferralEvent.select(ReferralEvent.referral).where(
        ReferralEvent.type == "started"
    )
    present_now = {p for p, m in zip(twelve, REGISTER_B, strict=True) if m in PRESENT}
    assert {str(s["referral"]) for s in started} == present_now

    again = await saved(statements, session_id, twelve, REGISTER_B, fran_principal)
    assert len(again) < len(corrected), again  # an identical register writes nothing


async def test_a_correction_across_sessions_moves_starts_and_raises_alerts_within_the_bound(
    statements, group, twelve, add_session, fran_principal
):
    """Three sessions: everyone starts on the first, is absent on the next two (three
    unexcused absences in a row puts nobody at risk yet with two), then a correction of
    the first session to absent un-starts them all and puts them at risk."""
    sessions = [
        await add_session(group, n, on)
        for n, on in ((1, "2026-10-06"), (2, "2026-10-13"), (3, "2026-10-20"))
    ]
    everyone = [Mark.attended] * 12
    absent = [Mark.absent] * 12
    for session_id, marks in zip(sessions, (everyone, absent, absent), strict=True):
        assert len(await saved(statements, session_id, twelve, marks, fran_principal)) <= (
            MOST_ROUND_TRIPS
        )
    assert await ParticipantAlert.count() == 0
    undo = await saved(statements, sessions[0], twelve, absent, fran_principal)
    assert len(undo) <= MOST_ROUND_TRIPS, undo
    assert await ReferralEvent.count().where(ReferralEvent.type == "started") == 0
    statuses = await Referral.select(Referral.status, Referral.status_on)
    assert {(r["status"], str(r["status_on"])) for r in statuses} == {("engaged", "2026-10-02")}
    alerts = await ParticipantAlert.select(ParticipantAlert.raised_on, ParticipantAlert.detail)
    assert len(alerts) == 12
    assert {str(a["raised_on"]) for a in alerts} == {"2026-10-20"}
