"""The ``inspire`` command, run as a user runs it: in a separate process."""

from __future__ import annotations

import asyncio
import os
import socket

import httpx
import pytest

from programme.platform.tables import Account, Agency
from tests.builders import INSPIRE, PASSWORD
from tests.builders import inspire as run_inspire

pytestmark = pytest.mark.anyio


def inspire(*args: str, password: str | None = None, env: dict[str, str] | None = None):
    return run_inspire(*args, stdin=None if password is None else password + "\n", env=env)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.smoke
async def test_user_add_creates_an_account_and_its_agency(clean_database):
    result = inspire(
        "user",
        "add",
        "Rita",
        "--role",
        "referrer",
        "--agency",
        "Rotherham Early Help",
        "--password-stdin",
        password=PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    account = (
        await Account.select(
            Account.role, Account.password_hash, Account.agency.name.as_alias("agency")
        )
        .where(Account.username == "rita")
        .first()
    )
    assert account["role"] == "referrer"
    assert account["agency"] == "Rotherham Early Help"
    assert account["password_hash"].startswith("$argon2id$")
    assert await Agency.count().where(Agency.name == "Rotherham Early Help") == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["user", "add", "rita", "--role", "referrer", "--password-stdin"], "agency"),
        (["user", "add", "rita", "--role", "boss", "--password-stdin"], "boss"),
        (["user", "add", "rita", "--password-stdin"], "--role"),
        (["user", "add", "rita", "--role", "admin"], "--password-stdin"),
        (["serve", "--port", "99999"], "99999"),
    ],
)
async def test_bad_arguments_fail_with_one_clear_line_and_no_traceback(
    clean_database, args, expected
):
    result = inspire(*args, password=PASSWORD if "--password-stdin" in args else None)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert await Account.count() == 0


async def test_a_weak_password_is_refused_on_the_command_line(clean_database):
    result = inspire(
        "user", "add", "alice", "--role", "admin", "--password-stdin", password="short"
    )
    assert result.returncode == 1
    assert "password" in result.stderr and "Traceback" not in result.stderr
    assert await Account.count() == 0


async def test_adding_the_same_username_twice_is_refused(clean_database):
    first = inspire(
        "user", "add", "alice", "--role", "admin", "--password-stdin", password=PASSWORD
    )
    assert first.returncode == 0, first.stderr
    second = inspire(
        "user", "add", "alice", "--role", "admin", "--password-stdin", password=PASSWORD
    )
    assert second.returncode == 1
    assert "taken" in second.stderr


KEYS = ("INSPIRE_SECRET_KEY", "INSPIRE_ENCRYPTION_KEY", "INSPIRE_PSEUDONYM_KEY")


def serve_a_real_server(tmp_path, **keys: str):
    """``inspire serve`` with DATABASE_URL (a server nobody runs) and only the ``keys`` given."""
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env.update(keys)
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    env["INSPIRE_DATA_DIR"] = str(tmp_path)
    return inspire("serve", env=env)


@pytest.mark.parametrize(
    "missing",
    [
        KEYS,
        ("INSPIRE_SECRET_KEY",),
        ("INSPIRE_ENCRYPTION_KEY",),
        ("INSPIRE_PSEUDONYM_KEY",),
        ("INSPIRE_ENCRYPTION_KEY", "INSPIRE_PSEUDONYM_KEY"),
    ],
)
def test_a_real_server_refuses_to_start_in_one_line_naming_every_missing_key(tmp_path, missing):
    given = {key: f"{key.lower()}-long-enough-for-a-test" for key in KEYS if key not in missing}
    result = serve_a_real_server(tmp_path, **given)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert [key for key in KEYS if key in result.stderr] == list(missing), result.stderr


@pytest.mark.parametrize("short", ["INSPIRE_ENCRYPTION_KEY", "INSPIRE_PSEUDONYM_KEY"])
def test_a_real_server_refuses_to_start_with_a_short_key(tmp_path, short):
    given = {key: f"{key.lower()}-long-enough-for-a-test" for key in KEYS}
    result = serve_a_real_server(tmp_path, **(given | {short: "too-short"}))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"inspire: {short} must be at least 16 characters"


@pytest.mark.smoke
async def test_user_add_then_serve_then_sign_in_over_real_http(clean_database):
    added = inspire(
        "user", "add", "alice", "--role", "admin", "--password-stdin", password=PASSWORD
    )
    assert added.returncode == 0, added.stderr
    referrer = inspire(
        "user",
        "add",
        "rita",
        "--role",
        "referrer",
        "--agency",
        "South Yorkshire Police",
        "--password-stdin",
        password=PASSWORD,
    )
    assert referrer.returncode == 0, referrer.stderr

    port = free_port()
    server = await asyncio.create_subprocess_exec(
        INSPIRE, "serve", "--port", str(port), stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(600):  # up to 2 minutes: a busy machine, one app import per worker
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.returncode is None, "inspire serve exited early"
                await asyncio.sleep(0.2)
            assert (await http.get("/health")).json() == {"status": "ok", "database": "ok"}

            login = await http.post("/auth/login", json={"username": "alice", "password": PASSWORD})
            assert login.status_code == 200
            admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
            accounts = await http.get("/accounts", headers=admin)
            assert accounts.status_code == 200
            assert {a["username"] for a in accounts.json()["items"]} == {"alice", "rita"}

            login = await http.post("/auth/login", json={"username": "rita", "password": PASSWORD})
            rita = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert (await http.get("/accounts", headers=rita)).status_code == 403
            assert (await http.get("/accounts")).status_code == 401
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
