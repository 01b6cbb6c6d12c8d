"""Sign-in floods: throttled per username and per client address, hashed off the event loop.

Over HTTP into the app, on real PostgreSQL. Each client below connects from an
address of its own (``ASGITransport(client=...)``), as different machines do.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import Any

import anyio
import httpx
import pytest
from argon2 import PasswordHasher
from litestar import Litestar

from programme.app import create_app
from programme.platform.accounts import passwords
from programme.platform.tables import LoginThrottle, Role
from tests.builders import INSPIRE, PASSWORD

pytestmark = pytest.mark.anyio

ATTACKER = "203.0.113.9"
OWNER = "198.51.100.7"
WAIT_LIMIT = 60
"""Seconds a test waits for something that should happen at once, before failing."""
HOLD_LIMIT = 20
"""Seconds a held verify waits to be let go before it gives up by itself."""


@asynccontextmanager
async def client_at(app: Litestar, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP into ``app`` from a connection whose peer address is ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def restarted(app: Litestar, **settings: Any) -> Litestar:
    """The same service (same pool and database) with some settings changed."""
    return create_app(replace(app.state.settings, **settings))


def patient(app: Litestar, **settings: Any) -> Litestar:
    """The service with delays of ten minutes and more: whatever a test asserts is
    delayed stays delayed, however slowly the machine runs it."""
    return restarted(app, login_delay_seconds=600, login_lockout_minutes=60, **settings)


def guess(username: str = "alice") -> dict[str, str]:
    return {"username": username, "password": "a wrong guess"}


def right(username: str = "alice") -> dict[str, str]:
    return {"username": username, "password": PASSWORD}


def watch_verifies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the threads argon2's verify ran in, one per password checked."""
    threads: list[str] = []
    original = PasswordHasher.verify

    def verify(self: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    return threads


async def throttle_rows(**where: str) -> list[dict[str, Any]]:
    rows = await LoginThrottle.select().order_by(LoginThrottle.id)
    return [row for row in rows if all(row[k] == v for k, v in where.items())]


async def test_simultaneous_wrong_guesses_for_one_name_check_no_more_than_the_limit(
    client, app, sign_in, monkeypatch
):
    """Counted before the check, in the same lock: 40 at once cannot all pass a check
    made before any of them was counted."""
    await sign_in(Role.admin, "alice")
    checked = watch_verifies(monkeypatch)
    limit = app.state.settings.login_max_failures
    async with client_at(patient(app), ATTACKER) as attacker:
        answers = await asyncio.gather(
            *(attacker.post("/auth/login", json=guess()) for _ in range(40))
        )
    assert Counter(a.status_code for a in answers) == {401: limit, 429: 40 - limit}
    assert len(checked) == limit
    [username] = await throttle_rows(scope="username", username="alice")
    assert (username["failures"], username["refused"]) == (limit, 40 - limit)


@pytest.mark.smoke
async def test_the_right_password_from_a_clean_address_signs_in_while_another_hammers_it(
    client, app, sign_in
):
    """Nobody can lock out the only admin by guessing wrong from elsewhere."""
    await sign_in(Role.admin, "alice")
    limit = app.state.settings.login_max_failures
    service = patient(app)
    async with client_at(service, ATTACKER) as attacker, client_at(service, OWNER) as owner:
        attack = [(await attacker.post("/auth/login", json=guess())).status_code for _ in range(8)]
        assert attack == [401] * limit + [429] * (8 - limit)

        signed_in = await owner.post("/auth/login", json=right())
        assert signed_in.status_code == 200
        me = await owner.get(
            "/auth/me", headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        )
        assert me.json()["username"] == "alice"

        # The owner's success lifted nothing for the attacker, right password or not.
        assert (await attacker.post("/auth/login", json=guess())).status_code == 429
        assert (await attacker.post("/auth/login", json=right())).status_code == 429
        # And the owner signs in again while the attack goes on.
        assert (await owner.post("/auth/login", json=right())).status_code == 200


async def test_an_attacking_address_gets_429_with_retry_after_and_growing_delays(client, app):
    """Waiting out each delay buys one more checked guess, then a delay twice as long."""
    minute = restarted(app, login_delay_seconds=60, login_lockout_minutes=60)
    limit = app.state.settings.login_max_failures
    retry_after = []
    delays = []
    async with client_at(minute, ATTACKER) as attacker:
        for _ in range(limit - 1):
            assert (await attacker.post("/auth/login", json=guess())).status_code == 401
        for _ in range(3):
            assert (await attacker.post("/auth/login", json=guess())).status_code == 401
            refused = await attacker.post("/auth/login", json=guess())
            assert refused.status_code == 429
            assert refused.json()["retry_after_seconds"] == int(refused.headers["retry-after"])
            retry_after.append(int(refused.headers["retry-after"]))
            [username] = await throttle_rows(scope="username", username="alice")
            delays.append(username["delayed_until"] - username["last_failure_at"])
            # Waiting out the delay, without waiting (and the worker's memory of
            # the refusal it gave, which would otherwise repeat it until then):
            await LoginThrottle.update(
                {LoginThrottle.delayed_until: datetime.now(UTC) - timedelta(seconds=1)}
            ).where(LoginThrottle.delayed_until.is_not_null())
            minute.state.refusals.forget("alice", ATTACKER)
    assert delays == [timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240)]
    assert retry_after == sorted(set(retry_after))
    for given, delay in zip(retry_after, delays, strict=True):
        assert 0 < given <= delay.total_seconds()


async def test_one_address_trying_many_usernames_is_delayed_and_others_are_not(client, app):
    """Password spraying: one address, a different name each time."""
    three = patient(app, login_max_failures_per_address=3)
    async with client_at(three, ATTACKER) as attacker, client_at(three, OWNER) as other:
        sprayed = [
            (await attacker.post("/auth/login", json=guess(f"user{n}"))).status_code
            for n in range(5)
        ]
        assert sprayed == [401, 401, 401, 429, 429]
        refused = await attacker.post("/auth/login", json=guess("someone-new"))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert (await other.post("/auth/login", json=guess("user4"))).status_code == 401


async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(client, app):
    """An untrusted client naming a fresh address in each request stays one address."""
    limit = app.state.settings.login_max_failures
    async with client_at(patient(app), ATTACKER) as attacker:
        answers = [
            await attacker.post(
                "/auth/login", json=guess(), headers={"X-Forwarded-For": f"192.0.2.{n}"}
            )
            for n in range(limit + 1)
        ]
    assert [a.status_code for a in answers] == [401] * limit + [429]
    assert {row["address"] for row in await throttle_rows() if row["address"]} == {ATTACKER}

    await LoginThrottle.delete(force=True)
    proxied = restarted(app, trusted_proxies=(ip_network("10.0.0.0/8"),))
    async with client_at(proxied, "10.0.0.1") as proxy, client_at(proxied, ATTACKER) as direct:
        chain = {"X-Forwarded-For": f"192.0.2.1, {OWNER}, 10.0.0.2"}
        assert (await proxy.post("/auth/login", json=guess(), headers=chain)).status_code == 401
        assert (await direct.post("/auth/login", json=guess(), headers=chain)).status_code == 401
    addresses = {row["address"] for row in await throttle_rows(scope="address")}
    assert addresses == {OWNER, ATTACKER}


async def test_forgotten_throttle_rows_are_deleted_so_unknown_names_do_not_pile_up(client, app):
    async with client_at(app, ATTACKER) as attacker:
        for n in range(6):
            await attacker.post("/auth/login", json=guess(f"nobody{n}"))
        assert len(await throttle_rows()) == 1 + 2 * 6  # the address, and two per name
        # Long after (without waiting): every record's memory has lapsed.
        await LoginThrottle.update(
            {LoginThrottle.forget_at: datetime.now(UTC) - timedelta(seconds=1)}, force=True
        )
        assert (await attacker.post("/auth/login", json=guess("nobody-else"))).status_code == 401
    left = await throttle_rows()
    assert {(row["scope"], row["username"]) for row in left} == {
        ("address", ""),
        ("username_at_address", "nobody-else"),
        ("username", "nobody-else"),
    }


async def test_refused_attempts_are_pruned_too(client, app):
    one = patient(app, login_max_failures_per_address=1)
    async with client_at(one, ATTACKER) as attacker:
        await attacker.post("/auth/login", json=guess("nobody"))
        await LoginThrottle.update(
            {LoginThrottle.forget_at: datetime.now(UTC) - timedelta(seconds=1)},
        ).where(LoginThrottle.scope != "address")
        for n in range(10):
            refused = await attacker.post("/auth/login", json=guess(f"sprayed{n}"))
            assert refused.status_code == 429
    assert [row["scope"] for row in await throttle_rows()] == ["address"]


async def test_passwords_are_verified_off_the_event_loop_which_serves_others_meanwhile(
    client, sign_in, monkeypatch
):
    """While argon2 is held mid-verify, ``GET /health`` is still answered.

    Were the verify on the event loop, holding it would hold every request,
    the test's own included, until the hold gives up by itself: the test fails.
    """
    await sign_in(Role.admin, "alice")
    entered = threading.Event()
    release = threading.Event()
    held: list[tuple[str, bool]] = []
    original = PasswordHasher.verify

    def held_verify(self: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        held.append((threading.current_thread().name, release.wait(HOLD_LIMIT)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "verify", held_verify)
    sign_ins = [
        asyncio.create_task(client.post("/auth/login", json=body))
        for body in (right(), guess("nobody"), guess("alice"))
    ]
    assert await anyio.to_thread.run_sync(entered.wait, WAIT_LIMIT)
    health = await client.get("/health")
    release.set()
    answers = await asyncio.gather(*sign_ins)

    assert health.status_code == 200
    assert sorted(a.status_code for a in answers) == [200, 401, 401]
    assert [released for _, released in held] == [True, True, True]
    assert threading.main_thread().name not in {name for name, _ in held}
    assert all(name.startswith(passwords.POOL_THREAD_PREFIX) for name, _ in held), held


async def test_passwords_are_hashed_off_the_event_loop_when_accounts_are_added(
    client, sign_in, monkeypatch
):
    admin = await sign_in(Role.admin, "alice")
    threads: list[str] = []
    niceness: list[int] = []
    original = PasswordHasher.hash

    def watched_hash(self: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "hash", watched_hash)
    body = {"username": "fran", "password": PASSWORD, "role": "facilitator"}
    assert (await client.post("/accounts", json=body, headers=admin)).status_code == 201
    assert threads != [threading.main_thread().name]
    assert len(threads) == 1 and threads[0].startswith(passwords.POOL_THREAD_PREFIX)
    if sys.platform.startswith("linux"):  # the event loop goes first for the CPU
        assert niceness[0] > os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert (await client.post("/auth/login", json=right("fran"))).status_code == 200


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for_health(http: httpx.AsyncClient, alive: Callable[[], bool]) -> None:
    with anyio.fail_after(WAIT_LIMIT * 2):
        while True:
            assert alive(), "inspire serve exited early"
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


async def test_inspire_serve_believes_no_x_forwarded_for_without_trusted_proxies(
    clean_database,
):
    """uvicorn itself would believe X-Forwarded-For from 127.0.0.1; the server must not."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        INSPIRE, "serve", "--port", str(port), stderr=asyncio.subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            await wait_for_health(http, lambda: server.returncode is None)
            for n in range(3):
                answer = await http.post(
                    "/auth/login", json=guess(), headers={"X-Forwarded-For": f"192.0.2.{n}"}
                )
                assert answer.status_code == 401
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
    addresses = {row["address"] for row in await throttle_rows(scope="address")}
    assert addresses == {"127.0.0.1"}
