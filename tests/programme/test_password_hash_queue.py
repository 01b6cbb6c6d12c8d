"""The password-hash pool's two levels: a clean address's sign-in is checked before
the guesses of addresses that have failed (``passwords._TwoLevelPool``).

No timings: the pool's one thread is held busy until every attempt is queued,
then let go, and the order in which passwords were checked is read.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from programme.platform.accounts import passwords, rules
from programme.platform.tables import Role
from tests.builders import PASSWORD
from tests.programme.test_signin_throttle import (
    HOLD_LIMIT,
    OWNER,
    WAIT_LIMIT,
    client_at,
    guess,
    patient,
    right,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The pool with one thread, as on a 2-core server; as configured again afterwards."""
    passwords.size_pool(1)
    try:
        yield
    finally:
        passwords.size_pool(passwords.get_settings().password_hash_workers)


class Hold:
    """Keeps the pool's thread busy until ``release``: whatever is submitted meanwhile queues."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.released = threading.Event()

    def __enter__(self) -> Hold:
        def held() -> bool:
            self.started.set()
            return self.released.wait(HOLD_LIMIT)

        self.work = passwords._pool.threads().submit(passwords.FIRST, held)
        assert self.started.wait(WAIT_LIMIT)
        return self

    def __exit__(self, *_: Any) -> None:
        self.released.set()
        assert self.work.result(WAIT_LIMIT), "the hold gave up by itself"


async def queued(count: int) -> None:
    with anyio.fail_after(WAIT_LIMIT):
        while passwords.waiting() < count:  # noqa: ASYNC110 (the queue is the threads')
            await anyio.sleep(0.01)


def test_clean_work_queued_after_work_from_failed_addresses_runs_first(one_thread):
    done: list[str] = []
    with Hold():
        works = [
            passwords._pool.threads().submit(level, done.append, name)
            for level, name in [
                (passwords.AFTER_FAILURES, "failed 1"),
                (passwords.AFTER_FAILURES, "failed 2"),
                (passwords.FIRST, "clean 1"),
                (passwords.AFTER_FAILURES, "failed 3"),
                (passwords.FIRST, "clean 2"),
            ]
        ]
    for work in works:
        work.result(WAIT_LIMIT)
    # Clean first, each level in the order it came.
    assert done == ["clean 1", "clean 2", "failed 1", "failed 2", "failed 3"]


def test_a_resized_pool_finishes_what_was_queued(one_thread):
    done: list[str] = []
    with Hold():
        work = passwords._pool.threads().submit(passwords.AFTER_FAILURES, done.append, "queued")
        passwords.size_pool(2)
    work.result(WAIT_LIMIT)
    assert done == ["queued"]


def test_an_address_with_failures_remembered_is_checked_after_clean_ones():
    policy = rules.ThrottlePolicy(5, 20, timedelta(seconds=30), timedelta(minutes=15))
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    fresh = rules.Attempt(rules.Throttle(), rules.Throttle(), rules.Throttle())
    clean = rules.admit(fresh, now, policy)
    failed = rules.admit(clean.records, now, policy)
    forgotten = rules.admit(clean.records, now + timedelta(hours=1), policy)
    assert (clean.address_has_failed, failed.address_has_failed) == (False, True)
    assert forgotten.address_has_failed is False


async def test_the_owner_from_a_clean_address_is_checked_before_queued_guesses(
    client, app, sign_in, monkeypatch, one_thread
):
    """With the pool held busy, guesses from addresses that have failed queue first;
    the owner's sign-in, queued after them, is checked first and lets them in."""
    await sign_in(Role.admin, "alice")
    service = patient(app)
    # Two, each failing twice in all: four failures, below the username's five.
    guessers = [f"203.0.113.{n}" for n in range(20, 22)]
    for address in guessers:  # each has failed once: a failure history
        async with client_at(service, address) as guesser:
            assert (await guesser.post("/auth/login", json=guess())).status_code == 401
    checked: list[str] = []
    original = passwords.verify_password

    def watched(password_hash: str | None, password: str) -> bool:
        checked.append("owner" if password == PASSWORD else "guess")
        return original(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", watched)

    async def attempt(address: str, body: dict[str, str]) -> int:
        async with client_at(service, address) as http:
            return (await http.post("/auth/login", json=body)).status_code

    with Hold():
        guesses = [asyncio.create_task(attempt(address, guess())) for address in guessers]
        await queued(len(guessers))
        owner = asyncio.create_task(attempt(OWNER, right()))
        await queued(len(guessers) + 1)
    assert await owner == 200
    assert await asyncio.gather(*guesses) == [401] * len(guessers)
    assert checked == ["owner", "guess", "guess"]
