"""Accepting a referral costs a fixed handful of round trips to the database, whether the
person is new or referred before: counted, statement by statement, with asyncpg's query
logger on every pooled connection (a count, never a timing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from programme.platform import database
from programme.platform.accounts import services as accounts
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.tables import Account, AuditEvent, Role
from referrals import services
from referrals.tables import Person, Referral, ReferralEvent, ReturnedReferral
from tests.builders import distinct_referral
from tests.programme.web.helpers import make_account

pytestmark = pytest.mark.anyio

MOST_ROUND_TRIPS = 7
"""BEGIN; the locked-quarter check (a shared lock, then the look-up); the person's keys
locked; the one statement that matches the person, replaces earlier returns, stores the
person, the referral, its acceptance step and its audit row; COMMIT; and the pool's
reset of the connection when it is given back."""


@pytest.fixture
async def statements(app) -> AsyncIterator[list[str]]:
    """Every statement any pooled connection sends while the test runs."""
    logged: list[str] = []

    async def attach(connection) -> None:
        connection.add_query_logger(lambda record: logged.append(record.query))

    engine = database.engine()
    await engine.close_connection_pool()
    await engine.start_connection_pool(min_size=1, max_size=1, init=attach)
    try:
        yield logged
    finally:
        await engine.close_connection_pool()
        await engine.start_connection_pool(min_size=0, max_size=app.state.settings.pool_max_size)


@pytest.fixture
async def referrer(clean_database) -> Principal:
    await make_account("rita", Role.referrer, "South Yorkshire Police")
    row = await Account.select(Account.id).where(Account.username == "rita").first()
    assert row is not None
    principal = await accounts.principal_for(row["id"])
    assert principal is not None
    return principal


async def submitted(app, statements, body: dict[str, Any], actor: Principal) -> list[str]:
    """The statements one accepted ``submit_referral`` sends, the connection's reset included."""
    from programme.app import OUTCOMES

    await asyncio.sleep(0.05)  # loggers run via call_soon: let earlier ones land first
    statements.clear()
    accepted = await services.submit_referral(body, actor, app.state.settings, today(), OUTCOMES)
    await asyncio.sleep(0.05)
    assert accepted.status == "accepted"
    return [" ".join(s.split())[:90] for s in statements]


async def test_an_accepted_referral_takes_one_statement_after_its_locks(app, statements, referrer):
    await submitted(app, statements, distinct_referral(0), referrer)  # warms the connection
    sent = await submitted(app, statements, distinct_referral(1), referrer)
    assert any(s.strip().upper().startswith("BEGIN") for s in sent), sent  # counting works
    assert len(sent) <= MOST_ROUND_TRIPS, sent
    assert sum("INSERT INTO referral " in s or "INSERT INTO person" in s for s in sent) <= 1, sent
    # Everything the statement stands for is stored: person, referral, step, audit row.
    stored = await Referral.select(Referral.id, Referral.person, Referral.quality_score).where(
        Referral.status == "accepted"
    )
    assert len(stored) == 2 and await Person.count() == 2
    assert await ReferralEvent.count().where(ReferralEvent.type == "accepted") == 2
    audited = await AuditEvent.select(AuditEvent.record_id).where(
        (AuditEvent.record_type == "referral") & (AuditEvent.action == "create")
    )
    assert {a["record_id"] for a in audited} == {str(r["id"]) for r in stored}


async def test_a_resubmission_replacing_a_return_of_a_person_referred_before_costs_no_more(
    app, statements, referrer
):
    """The longest path: the person is known (a closed referral), and the agency returned
    them earlier this quarter, so the return is replaced and the previous one counted."""
    from programme.app import OUTCOMES

    await submitted(app, statements, distinct_referral(0), referrer)
    first = await Referral.select(Referral.id).first()
    assert first is not None
    await Referral.update({Referral.status: "closed"}).where(Referral.id == first["id"])
    unconsented = distinct_referral(0, consent_given="no")
    with pytest.raises(Exception, match="not accepted"):
        await services.submit_referral(unconsented, referrer, app.state.settings, today(), OUTCOMES)
    assert await ReturnedReferral.count().where(ReturnedReferral.replaced.eq(False)) == 1
    sent = await submitted(app, statements, distinct_referral(0), referrer)
    assert len(sent) <= MOST_ROUND_TRIPS, sent
    assert await ReturnedReferral.count().where(ReturnedReferral.replaced.eq(False)) == 0
    assert await Person.count() == 1 and await Referral.count() == 2
    latest = await Referral.select(Referral.person).where(Referral.status == "accepted").first()
    assert latest is not None
    assert await Referral.count().where(Referral.person == latest["person"]) == 2
