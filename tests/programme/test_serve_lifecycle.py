"""``inspire serve`` as systemd and Docker run it: started, stopped with SIGTERM, in its own
data directory with its own embedded PostgreSQL, with one process or several.

Each test runs the real command in a subprocess on a throwaway data directory
(never the suite's database, whatever DATABASE_URL says), talks to it over
HTTP on 127.0.0.1, and checks that SIGTERM ends the command within
``STOP_LIMIT`` seconds and stops the PostgreSQL it started, also after that
PostgreSQL went away and came back under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from pgserver._commands import pg_ctl

pytestmark = pytest.mark.anyio

INSPIRE = str(Path(sys.executable).parent / "inspire")
PASSWORD = "a perfectly long test password"
STOP_LIMIT = 10
"""Seconds SIGTERM may take to stop everything (systemd's default before SIGKILL is 90)."""
START_LIMIT = 120
"""Seconds the server may take to answer /health (a busy machine, a first initdb)."""
# pgserver runs PostgreSQL as a user of its own when the tests run as root.
PG_USER = "pgserver" if os.geteuid() == 0 else None
WORKER = "multiprocessing.spawn"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short: the embedded server's Unix socket lives in it.
    directory = Path(tempfile.mkdtemp(prefix="inspire-serve-"))
    try:
        yield directory
    finally:
        leftover = postmaster(directory)
        if leftover is not None:  # only if a test failed: stop it by its own pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGQUIT)
        shutil.rmtree(directory, ignore_errors=True)


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The embedded set-up in ``data_dir``: no DATABASE_URL, keys generated there."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("INSPIRE_")
    }
    return {**kept, "INSPIRE_DATA_DIR": str(data_dir), **extra}


@dataclass
class Postmaster:
    pid: int
    socket_dir: str


def postmaster(data_dir: Path) -> Postmaster | None:
    """The PostgreSQL running in ``data_dir`` now, if any."""
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return None
    pid = int(lines[0])
    if not running(pid):
        return None
    return Postmaster(pid, lines[4])


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(data_dir: Path, *args: str, **env: str) -> Served:
    port = free_port()
    log = data_dir / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [INSPIRE, "serve", "--port", str(port), *args],
            env=environment(data_dir, **env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Served(process, f"http://127.0.0.1:{port}", log)


@contextlib.asynccontextmanager
async def served(data_dir: Path, *args: str, **env: str) -> AsyncIterator[Served]:
    """``inspire serve`` on a free port, answering /health; killed on the way out if need be."""
    server = start(data_dir, *args, **env)
    process = server.process
    try:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
            for _ in range(START_LIMIT * 5):
                assert process.poll() is None, server.output()
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            else:
                pytest.fail(f"inspire serve did not answer /health:\n{server.output()}")
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop_with_sigterm(server: Served) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        returncode = server.process.wait(timeout=STOP_LIMIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"inspire serve still running {STOP_LIMIT}s after SIGTERM:\n{server.output()}")
    assert returncode == 0, server.output()
    assert "Traceback" not in server.output()


def add_admin(data_dir: Path) -> None:
    added = subprocess.run(
        [INSPIRE, "user", "add", "alice", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert added.returncode == 0, added.stderr


async def bearer(http: httpx.AsyncClient) -> dict[str, str]:
    login = await http.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_sigterm_stops_the_server_and_the_postgresql_it_started(data_dir):
    async with served(data_dir, "--workers", "1") as server:
        database = postmaster(data_dir)
        assert database is not None
        stop_with_sigterm(server)
    assert not running(database.pid)
    assert postmaster(data_dir) is None


async def test_two_workers_share_one_database_and_one_signing_key_and_stop_together(data_dir):
    add_admin(data_dir)
    async with served(data_dir, "--workers", "2") as server:
        database = postmaster(data_dir)
        assert database is not None
        workers = [
            child
            for child in psutil.Process(server.process.pid).children()
            if WORKER in " ".join(child.cmdline())
        ]
        assert len(workers) == 2
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
            headers = await bearer(http)
        # A new connection each time, so the requests spread over both workers: a
        # worker with a signing key of its own would refuse the other's tokens.
        for _ in range(20):
            async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
                me = await http.get("/auth/me", headers=headers)
            assert me.status_code == 200, me.text
        stop_with_sigterm(server)
    assert not any(running(worker.pid) for worker in workers)
    assert not running(database.pid)


def test_too_many_workers_for_the_database_are_refused_in_one_line(data_dir):
    done = subprocess.run(
        [INSPIRE, "serve", "--port", str(free_port()), "--workers", "3"],
        env=environment(data_dir, INSPIRE_DB_POOL_SIZE="40"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "inspire: --workers 3 with INSPIRE_DB_POOL_SIZE 40 needs 120 database connections"
        " and 95 are available: lower one of them"
    ]
    assert postmaster(data_dir) is None


async def _keep_asking(
    http: httpx.AsyncClient, headers: dict[str, str], seen: Counter, worker: int
) -> None:
    """Signed-in reads, and new agencies (each a transaction), until cancelled."""
    attempt = 0
    while True:
        attempt += 1
        try:
            me = await http.get("/auth/me", headers=headers)
            added = await http.post(
                "/agencies", json={"name": f"Agency {worker}-{attempt}"}, headers=headers
            )
            seen.update([me.status_code, added.status_code])
        except httpx.TransportError as exc:
            seen[type(exc).__name__] += 1


async def test_after_an_outage_under_load_sigterm_still_stops_everything_in_time(data_dir):
    add_admin(data_dir)
    async with served(data_dir, "--workers", "1") as server:
        first = postmaster(data_dir)
        assert first is not None
        seen: Counter = Counter()
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(
            base_url=server.base_url, trust_env=False, timeout=30, limits=limits
        ) as http:
            headers = await bearer(http)
            load = [asyncio.create_task(_keep_asking(http, headers, seen, n)) for n in range(12)]
            try:
                await asyncio.sleep(1)
                await asyncio.to_thread(
                    pg_ctl, ["-m", "fast", "-w", "stop"], pgdata=data_dir / "pgdata", user=PG_USER
                )
                await _until_health_is(http, 503)
                await asyncio.to_thread(
                    pg_ctl,
                    [
                        "-w",
                        "-o",
                        '-h ""',
                        "-o",
                        f"-k {first.socket_dir}",
                        "-l",
                        str(data_dir / "pgdata" / "log"),
                        "start",
                    ],
                    pgdata=data_dir / "pgdata",
                    user=PG_USER,
                )
                await _until_health_is(http, 200)
                await asyncio.sleep(1)
            finally:
                for task in load:
                    task.cancel()
                await asyncio.gather(*load, return_exceptions=True)
        assert seen[503] > 0 and seen[200] > 0, seen
        assert set(seen) <= {200, 201, 503}, seen  # a 500 means an outage taken for a bug
        second = postmaster(data_dir)
        assert second is not None and second.pid != first.pid
        stop_with_sigterm(server)
    assert not running(second.pid)


async def _until_health_is(http: httpx.AsyncClient, status: int) -> None:
    for _ in range(START_LIMIT * 5):
        with contextlib.suppress(httpx.TransportError):
            if (await http.get("/health")).status_code == status:
                return
        await asyncio.sleep(0.2)
    pytest.fail(f"/health never answered {status}")
