"""Refusals repeated from memory: a guesser refused within a known delay costs no query.

``accounts.rules.remembered_refusal`` and ``services.RecentRefusals``: the
records decide every refusal; the worker that gave one repeats it, without
reading them, until it would have ended. Over HTTP into the app on real
PostgreSQL, as in ``test_signin_throttle``, plus the pure rule with a clock of
its own.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
from litestar import Litestar

from programme.platform import database
from programme.platform.accounts import rules
from programme.platform.accounts.services import RecentRefusals
from programme.platform.tables import LoginThrottle, Role
from tests.programme.test_signin_throttle import (
    ATTACKER,
    OWNER,
    WAIT_LIMIT,
    client_at,
    guess,
    patient,
    right,
    throttle_rows,
    watch_verifies,
)

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POLICY = rules.ThrottlePolicy(
    username_failures=5,
    address_failures=20,
    first_delay=timedelta(seconds=30),
    longest_delay=timedelta(minutes=15),
)


def count_connections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per connection taken from the pool: every query takes one."""
    taken: list[int] = []
    original = database._acquire

    async def acquire(pool: Any) -> Any:
        taken.append(1)
        return await original(pool)

    monkeypatch.setattr(database, "_acquire", acquire)
    return taken


async def delay_alice_for(service: Litestar, address: str) -> httpx.AsyncClient:
    """Fail for alice from ``address`` until the username is delayed; one refusal, remembered."""
    limit = service.state.settings.login_max_failures
    async with client_at(service, address) as attacker:
        for _ in range(limit):
            assert (await attacker.post("/auth/login", json=guess())).status_code == 401
        assert (await attacker.post("/auth/login", json=guess())).status_code == 429
    return attacker


async def test_a_refusal_within_a_known_delay_asks_the_database_nothing(
    client, app, sign_in, monkeypatch
):
    await sign_in(Role.admin, "alice")
    service = patient(app)
    await delay_alice_for(service, ATTACKER)
    taken = count_connections(monkeypatch)
    checked = watch_verifies(monkeypatch)
    async with client_at(service, ATTACKER) as attacker:
        answers = [await attacker.post("/auth/login", json=guess()) for _ in range(20)]
        right_one = await attacker.post("/auth/login", json=right())
    assert {a.status_code for a in [*answers, right_one]} == {429}
    assert all(0 < int(a.headers["retry-after"]) <= 600 for a in answers)
    assert (taken, checked) == ([], [])


async def test_a_delayed_address_is_refused_from_memory_whatever_the_username(
    client, app, monkeypatch
):
    """Rule 1 first: a spraying address refuses itself before any username is looked at."""
    three = patient(app, login_max_failures_per_address=3)
    async with client_at(three, ATTACKER) as attacker:
        for n in range(3):
            assert (await attacker.post("/auth/login", json=guess(f"user{n}"))).status_code == 401
        assert (await attacker.post("/auth/login", json=guess("user3"))).status_code == 429
        taken = count_connections(monkeypatch)
        sprayed = [
            (await attacker.post("/auth/login", json=guess(f"new{n}"))).status_code
            for n in range(10)
        ]
    assert sprayed == [429] * 10
    assert taken == []
    async with client_at(three, OWNER) as other:
        assert (await other.post("/auth/login", json=guess("new0"))).status_code == 401


async def test_refusals_from_memory_are_tallied_on_the_next_locked_visit(client, app, sign_in):
    """Operators still see every refusal: the worker adds them to the records it next locks."""
    await sign_in(Role.admin, "alice")
    service = patient(app)
    limit = app.state.settings.login_max_failures
    await delay_alice_for(service, ATTACKER)
    async with client_at(service, ATTACKER) as attacker:
        for _ in range(9):
            assert (await attacker.post("/auth/login", json=guess())).status_code == 429
    [username] = await throttle_rows(scope="username", username="alice")
    assert username["refused"] == 1  # the nine are in memory so far
    async with client_at(service, OWNER) as owner:
        assert (await owner.post("/auth/login", json=right())).status_code == 200
    [username] = await throttle_rows(scope="username", username="alice")
    assert (username["failures"], username["refused"]) == (limit, 10)


async def test_the_owner_signs_in_while_forty_guesses_for_the_account_are_in_flight(
    client, app, sign_in
):
    """The guessers' refusals take no lock: the owner waits for none of theirs.

    The forty guessing addresses' own records are held locked by another
    connection all along. Were a guesser's refusal to lock anything it would
    wait for that connection, and the test times out; the owner, from a clean
    address, locks only its own address's records and the username's.
    """
    await sign_in(Role.admin, "alice")
    service = patient(app)
    addresses = [f"203.0.113.{n}" for n in range(10, 50)]
    await delay_alice_for(service, ATTACKER)
    for address in addresses:  # each fails once (a fresh address), then is refused
        async with client_at(service, address) as guesser:
            first = (await guesser.post("/auth/login", json=guess())).status_code
            assert (
                first == 401
                and (await guesser.post("/auth/login", json=guess())).status_code == 429
            )

    holder = await asyncpg.connect(**database.engine().config)
    try:
        async with holder.transaction():
            held = await holder.fetch(
                "SELECT id FROM login_throttle WHERE address = ANY($1::text[]) FOR UPDATE",
                addresses,
            )
            assert len(held) == 2 * len(addresses)  # each one's address and username-here

            async def guesses_from(address: str) -> list[int]:
                async with client_at(service, address) as guesser:
                    return [
                        (await guesser.post("/auth/login", json=guess())).status_code
                        for _ in range(5)
                    ]

            with anyio.fail_after(WAIT_LIMIT):
                in_flight = [asyncio.create_task(guesses_from(a)) for a in addresses]
                async with client_at(service, OWNER) as owner:
                    signed_in = await owner.post("/auth/login", json=right())
                answers = await asyncio.gather(*in_flight)
    finally:
        await holder.close()
    assert signed_in.status_code == 200
    assert Counter(code for each in answers for code in each) == {429: 5 * len(addresses)}


async def test_forty_fresh_addresses_at_once_each_get_exactly_one_checked_guess(
    client, app, sign_in, monkeypatch
):
    """Counting stays exact under the memory: once the username is delayed, one check per
    fresh address, however many of its guesses arrive at once."""
    await sign_in(Role.admin, "alice")
    service = patient(app)
    await delay_alice_for(service, ATTACKER)
    checked = watch_verifies(monkeypatch)
    addresses = [f"203.0.113.{n}" for n in range(10, 50)]

    async def three_at_once(address: str) -> list[int]:
        async with client_at(service, address) as guesser:
            answers = await asyncio.gather(
                *(guesser.post("/auth/login", json=guess()) for _ in range(3))
            )
        return [a.status_code for a in answers]

    answers = await asyncio.gather(*(three_at_once(a) for a in addresses))
    assert all(sorted(each) == [401, 429, 429] for each in answers), answers
    assert len(checked) == len(addresses)
    [username] = await throttle_rows(scope="username", username="alice")
    limit = app.state.settings.login_max_failures
    assert username["failures"] == limit + len(addresses)


async def test_a_delay_lifted_by_a_right_password_is_forgotten_by_the_worker(client, app, sign_in):
    """The memory never outlasts the records' decision in the worker that changed them."""
    await sign_in(Role.admin, "alice")
    service = patient(app)
    await delay_alice_for(service, ATTACKER)
    # The delay ends early (as if waited out) and the owner signs in, clearing the username.
    await LoginThrottle.update(
        {LoginThrottle.delayed_until: datetime.now(UTC) - timedelta(seconds=1)}
    ).where(LoginThrottle.delayed_until.is_not_null())
    async with client_at(service, OWNER) as owner:
        assert (await owner.post("/auth/login", json=right())).status_code == 200
    async with client_at(service, ATTACKER) as attacker:
        assert (await attacker.post("/auth/login", json=guess())).status_code == 401


def refused(records: rules.Attempt) -> rules.Admission:
    admission = rules.admit(records, NOW, POLICY)
    assert admission.retry_at is not None
    return admission


DELAYED = rules.Throttle(
    failures=5,
    last_failure_at=NOW,
    delayed_until=NOW + timedelta(minutes=10),
    forget_at=NOW + timedelta(minutes=25),
)


def test_rule_one_is_remembered_for_any_username_until_the_address_delay_ends():
    admission = refused(rules.Attempt(DELAYED, rules.Throttle(), rules.Throttle()))
    assert rules.remembered_refusal(admission) == rules.RememberedRefusal(
        any_username=True, until=NOW + timedelta(minutes=10)
    )


def test_rule_two_is_remembered_until_the_username_delay_or_this_address_is_forgotten():
    here = rules.Throttle(failures=1, last_failure_at=NOW, forget_at=NOW + timedelta(minutes=4))
    admission = refused(rules.Attempt(rules.Throttle(), here, DELAYED))
    assert rules.remembered_refusal(admission) == rules.RememberedRefusal(
        any_username=False, until=NOW + timedelta(minutes=4)
    )
    longer = rules.Throttle(failures=1, last_failure_at=NOW, forget_at=NOW + timedelta(hours=1))
    admission = refused(rules.Attempt(rules.Throttle(), longer, DELAYED))
    assert rules.remembered_refusal(admission) == rules.RememberedRefusal(
        any_username=False, until=NOW + timedelta(minutes=10)
    )


def test_an_admitted_attempt_is_not_remembered():
    admission = rules.admit(
        rules.Attempt(DELAYED, DELAYED, DELAYED), NOW + timedelta(hours=1), POLICY
    )
    assert admission.retry_at is None
    assert rules.remembered_refusal(admission) is None


def test_a_remembered_refusal_ends_when_the_records_said_and_only_for_its_own_keys():
    memory = RecentRefusals()
    here = rules.Throttle(failures=1, last_failure_at=NOW, forget_at=NOW + timedelta(hours=1))
    memory.remember("alice", ATTACKER, refused(rules.Attempt(rules.Throttle(), here, DELAYED)), NOW)
    later = NOW + timedelta(minutes=9)
    assert memory.refused_until("alice", ATTACKER, later) == NOW + timedelta(minutes=10)
    assert memory.refused_until("bob", ATTACKER, later) is None
    assert memory.refused_until("alice", OWNER, later) is None
    assert memory.refused_until("alice", ATTACKER, NOW + timedelta(minutes=10)) is None
    assert len(memory) == 0
    assert memory.take_tally("alice", ATTACKER) == (0, 1)


def test_the_memory_is_bounded_and_keeps_refusing_nothing_it_has_no_room_for():
    memory = RecentRefusals(most=3)
    for n in range(5):
        admission = refused(rules.Attempt(DELAYED, rules.Throttle(), rules.Throttle()))
        memory.remember("alice", f"10.0.0.{n}", admission, NOW)
    assert len(memory) == 3
    assert memory.refused_until("alice", "10.0.0.4", NOW) is None  # asks the records
    # Once the remembered ones have ended, there is room again.
    after = NOW + timedelta(minutes=11)
    memory.remember(
        "alice",
        "10.0.0.4",
        refused(
            rules.Attempt(
                replace_delay(DELAYED, after + timedelta(minutes=1)),
                rules.Throttle(),
                rules.Throttle(),
            )
        ),
        after,
    )
    assert memory.refused_until("alice", "10.0.0.4", after) == after + timedelta(minutes=1)
    assert len(memory) == 1


def replace_delay(record: rules.Throttle, until: datetime) -> rules.Throttle:
    return replace(record, delayed_until=until, forget_at=until + timedelta(minutes=15))


def test_a_long_first_delay_doubled_many_times_is_the_longest_delay_not_an_error():
    """A first delay of ten minutes doubled 40 times is past the largest timedelta."""
    policy = rules.ThrottlePolicy(5, 20, timedelta(minutes=10), timedelta(hours=1))
    assert policy.delay_after(5 + 100, free=5) == timedelta(hours=1)
    assert policy.delay_after(5 + 1, free=5) == timedelta(minutes=20)
