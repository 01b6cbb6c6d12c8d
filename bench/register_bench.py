"""Saving a 12-person register over real HTTP, as a ratio to a bare asyncpg executemany.

    python bench/register_bench.py                    # the full run (a few minutes)
    python bench/register_bench.py --requests 100     # a quicker one

Runs on its own embedded PostgreSQL in a fresh temporary data directory
(INSPIRE_DATA_DIR is set before any project module is imported), deleted at the
end. With DATABASE_URL set it uses that server instead (point it at a scratch
database: the accounts, referrals, group and audit rows it creates stay there;
only its scratch table is dropped).

Setup goes through the real interfaces: ``inspire user add`` for a referrer and
a facilitator, ``inspire serve`` on a free port of 127.0.0.1, then HTTP for the
12 referrals (moved to engaged), the group, its members and its sessions.

Each case PUTs /sessions/{id}/attendance with a 12-person register, at a fixed
concurrency, either on ONE session (concurrent saves of one session queue on
its row lock by design) or spread over one session per client. ``identical``
re-saves the same register (the idempotent path); ``changing`` alternates two
registers that differ in every line, so each save is a correction (updates,
audit rows, milestone derivation). Each session gets its first register
(the insert) one at a time before the clients start, then a warm-up, then the
measured saves. The same traffic then goes to two baselines in the same run:

- ``bare HTTP``: bench/register_bare_app.py, a Litestar app served by uvicorn
  like the service, that decodes the same JSON and does one executemany;
- ``executemany``: asyncpg ``executemany`` of the same 12 rows straight from
  this process (one held connection per client), no HTTP at all.

Both baselines upsert into a scratch copy of the ``attendance`` table
(``CREATE TABLE ... (LIKE attendance INCLUDING ALL)``: same columns, defaults
and indexes, no foreign keys) with ``ON CONFLICT (session, referral) DO UPDATE
... WHERE status IS DISTINCT FROM``, so an identical register writes nothing
there either.

Two probes follow: first saves of fresh sessions of the group sent at once
(the status codes they get), and the service's ``save_register`` called
in-process (no HTTP) with every SQL statement logged by asyncpg, to show where
a save spends its time.

All traffic goes to 127.0.0.1; every loop has a fixed count and a time limit;
the servers started here are stopped at the end and on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID, uuid4

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
REGISTER_SIZE = 12
TABLE = "bench_register_attendance"
BARE_APP = BENCH_DIR / "register_bare_app.py"
# Register A: 6 attended, 2 late, 2 absent, 2 excused. Register B moves every
# line one mark on (attended -> late -> absent -> excused -> attended), so
# switching between them corrects all 12 lines and moves people in and out of
# "present" (which starts, un-starts and re-dates referrals).
NEXT_MARK = {"attended": "late", "late": "absent", "absent": "excused", "excused": "attended"}
REGISTER_A = ["attended"] * 6 + ["late"] * 2 + ["absent"] * 2 + ["excused"] * 2
REGISTER_B = [NEXT_MARK[mark] for mark in REGISTER_A]
CORE_SESSIONS = 24  # the programme's default; further sessions are numbered one-to-ones
HTTP_TIMEOUT = 30.0


def log(message: str) -> None:
    print(f"[register-bench] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="measured saves per case")
    parser.add_argument("--warm-up", type=int, default=40, help="unmeasured saves per case")
    parser.add_argument(
        "--concurrency", default="1,4", help="comma-separated clients in flight (default 1,4)"
    )
    parser.add_argument(
        "--time-limit", type=float, default=120.0, help="seconds allowed per measurement"
    )
    parser.add_argument(
        "--breakdown-saves", type=int, default=100, help="in-process saves per breakdown"
    )
    parser.add_argument(
        "--first-save-rounds",
        type=int,
        default=5,
        help="rounds of first saves of fresh sessions at once (0: skip)",
    )
    parser.add_argument("--no-bare-http", action="store_true", help="skip the bare HTTP baseline")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--server-log", type=Path, help="copy the service's log (stderr) here at the end"
    )
    args = parser.parse_args(argv)
    try:
        args.concurrency = sorted({int(part) for part in args.concurrency.split(",") if part})
    except ValueError:
        parser.error("--concurrency must be whole numbers separated by commas")
    if not args.concurrency or not all(1 <= c <= 32 for c in args.concurrency):
        parser.error("--concurrency values must be 1 to 32")
    if not 1 <= args.requests <= 20_000 or not 0 <= args.warm_up <= 2_000:
        parser.error("--requests must be 1 to 20,000 and --warm-up 0 to 2,000")
    if not 0 <= args.first_save_rounds <= 20:
        parser.error("--first-save-rounds must be 0 to 20")
    if not 1 <= args.time_limit <= 600 or not 0 <= args.breakdown_saves <= 2_000:
        parser.error("--time-limit must be 1 to 600 seconds, --breakdown-saves 0 to 2,000")
    return args


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------- processes


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def inspire_command() -> list[str]:
    """The ``inspire`` console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("inspire")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from programme.cli import main; main()"]


def add_user(username: str, password: str, role: str, agency: str | None) -> None:
    command = [*inspire_command(), "user", "add", username, "--role", role, "--password-stdin"]
    if agency:
        command += ["--agency", agency]
    done = subprocess.run(
        command,
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"inspire user add {username} failed: {done.stderr.strip()}")
    log(done.stdout.strip())


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_child(
    name: str, command: list[str], env: dict[str, str], log_dir: Path, children: list[Child]
) -> Child:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    child = Child(name, process, log_path)
    children.append(child)
    return child


def stop_children(children: list[Child]) -> None:
    """SIGTERM (uvicorn shuts down cleanly), then SIGKILL after 15 s; only our own pids."""
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"{child.name} (pid {child.process.pid}) did not stop; killing it")
            child.process.kill()
            child.process.wait(timeout=10)


def stop_embedded_server(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL this run started, before its directory is deleted."""
    database = sys.modules.get("programme.platform.database")
    server = getattr(database, "_embedded", None)
    if server is not None:
        server.cleanup()  # stops it when this is the last process using it
    # A child that died without saying goodbye leaves pgserver thinking it is still
    # in use: stop the postmaster of *this run's* data directory by its own pid.
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except (ValueError, IndexError, ProcessLookupError, PermissionError, OSError):
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)


def code_version() -> str:
    try:
        found = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip()


# ---------------------------------------------------------------- statistics


@dataclass
class Measured:
    target: str
    requested: int
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    failures: list[str] = field(default_factory=list)
    cut_short: bool = False

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return self.done - len(self.failures)

    @property
    def per_second(self) -> float:
        return self.done / self.wall if self.wall else 0.0

    @property
    def time_per_save(self) -> float:
        """Wall time over saves: the effective cost of one save at this concurrency."""
        return self.wall / self.done if self.done else float("nan")

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile, in seconds."""
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
        return ordered[rank - 1]

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "requested": self.requested,
            "done": self.done,
            "non_200": len(self.failures),
            "failures_sample": self.failures[:5],
            "cut_short": self.cut_short,
            "wall_s": round(self.wall, 4),
            "per_second": round(self.per_second, 1),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 3),
            "p50_ms": round(self.percentile(0.50) * 1000, 3),
            "p95_ms": round(self.percentile(0.95) * 1000, 3),
            "time_per_save_ms": round(self.time_per_save * 1000, 3),
        }


Send = Callable[[int], Awaitable[str | None]]
"""Send one save for a client (worker number); returns None, or a failure description."""


async def drive(target: str, send: Send, count: int, concurrency: int, limit: float) -> Measured:
    """``count`` saves from ``concurrency`` clients, stopping at ``limit`` seconds."""
    result = Measured(target, count)
    issued = 0
    deadline = time.perf_counter() + limit

    async def client(worker: int) -> None:
        nonlocal issued
        while issued < count and time.perf_counter() < deadline:
            issued += 1
            started = time.perf_counter()
            try:
                failure = await send(worker)
            except Exception as exc:  # a refused connection, a timeout: count it, go on
                failure = f"{type(exc).__name__}: {exc}"[:200]
            result.latencies.append(time.perf_counter() - started)
            if failure is not None:
                result.failures.append(failure)

    started = time.perf_counter()
    tasks = [asyncio.create_task(client(w)) for w in range(concurrency)]
    try:
        async with asyncio.timeout(limit + HTTP_TIMEOUT + 5):
            await asyncio.gather(*tasks)
    except TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.wall = time.perf_counter() - started
    result.cut_short = result.done < count
    return result


# ---------------------------------------------------------------- HTTP setup


def referral_body(n: int, last_name: str, received_on: date) -> dict[str, Any]:
    """The n-th distinct person, as tests/builders.py ``distinct_referral`` makes them."""
    return {
        "received_on": received_on.isoformat(),
        "first_name": f"Person{n}",
        "last_name": last_name,
        "date_of_birth": f"{1960 + n % 40}-03-{1 + n % 28:02d}",
        "gender": "male",
        "phone": f"0114 496 0{n:03d}",  # Ofcom drama numbers: valid, never anyone's
        "local_authority": "Rotherham",
        "relationship": "partner",
        "risk_level": "medium",
        "prior_incidents": 2,
        "substance_misuse": False,
        "mental_health": True,
        "children_in_household": True,
        "on_probation_programme": False,
        "consent_given": True,
        "consent_obtained_on": received_on.isoformat(),
        "consent_method": "verbal",
        "notes": "Benchmark referral.",
    }


def expect(response: Any, status: int, what: str) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


async def wait_healthy(base: str, child: Child, limit: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        while True:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited early:\n{child.tail()}")
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} did not answer /health:\n{child.tail()}")
            await asyncio.sleep(0.2)


@dataclass
class Setup:
    service: str
    bare: str | None
    facilitator_id: UUID
    facilitator_headers: dict[str, str]
    referrals: list[UUID]
    group_id: str
    sessions: list[str] = field(default_factory=list)
    session_dates: list[date] = field(default_factory=list)


async def build_setup(
    service: str, bare: str | None, users: dict[str, tuple[str, str]], tag: str
) -> Setup:
    """Sign in, then 12 engaged referrals in one group of 12, all over HTTP."""
    import httpx

    from programme.platform.clock import today

    now = today()
    received_on = now - timedelta(days=40)
    engaged_on = now - timedelta(days=30)
    async with httpx.AsyncClient(base_url=service, timeout=HTTP_TIMEOUT) as http:
        headers = {}
        for role, (username, password) in users.items():
            token = expect(
                await http.post("/auth/login", json={"username": username, "password": password}),
                200,
                f"login {username}",
            )
            headers[role] = {"Authorization": f"Bearer {token['access_token']}"}
        me = expect(await http.get("/auth/me", headers=headers["facilitator"]), 200, "me")
        referrals: list[UUID] = []
        for n in range(REGISTER_SIZE):
            body = referral_body(n, f"Bench{tag}", received_on)
            accepted = expect(
                await http.post("/referrals", json=body, headers=headers["referrer"]),
                201,
                f"referral {n}",
            )
            for step in ("contacted", "engaged"):
                expect(
                    await http.post(
                        f"/referrals/{accepted['id']}/events",
                        json={"type": step, "on": engaged_on.isoformat()},
                        headers=headers["facilitator"],
                    ),
                    201,
                    f"referral {n} {step}",
                )
            referrals.append(UUID(accepted["id"]))
        group = expect(
            await http.post(
                "/groups",
                json={
                    "name": f"Bench register {tag}",
                    "starts_on": engaged_on.isoformat(),
                    "facilitators": [users["facilitator"][0]],
                    "capacity": REGISTER_SIZE,
                },
                headers=headers["facilitator"],
            ),
            201,
            "group",
        )
        for referral_id in referrals:
            expect(
                await http.post(
                    f"/groups/{group['id']}/members",
                    json={"referral_id": str(referral_id), "joined_on": engaged_on.isoformat()},
                    headers=headers["facilitator"],
                ),
                201,
                "member",
            )
    return Setup(
        service=service,
        bare=bare,
        facilitator_id=UUID(me["id"]),
        facilitator_headers=headers["facilitator"],
        referrals=referrals,
        group_id=group["id"],
    )


async def new_sessions(setup: Setup, count: int) -> list[str]:
    """``count`` more past sessions: core group sessions 1-24, then numbered one-to-ones."""
    import httpx

    from programme.platform.clock import today

    first_day = today() - timedelta(days=29)  # the day after everyone engaged
    made = []
    async with httpx.AsyncClient(base_url=setup.service, timeout=HTTP_TIMEOUT) as http:
        for _ in range(count):
            k = len(setup.sessions)
            if k < CORE_SESSIONS:
                number, kind = k + 1, "group"
            else:
                number, kind = k - CORE_SESSIONS + 1, "one_to_one"
            held_on = first_day + timedelta(days=k % 28)  # 29 to 2 days ago
            created = expect(
                await http.post(
                    f"/groups/{setup.group_id}/sessions",
                    json={"number": number, "held_on": held_on.isoformat(), "kind": kind},
                    headers=setup.facilitator_headers,
                ),
                201,
                f"session {k}",
            )
            setup.sessions.append(created["id"])
            setup.session_dates.append(held_on)
            made.append(created["id"])
    return made


# ---------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    mode: str  # "identical" or "changing"
    concurrency: int
    spread: bool  # one session per client, or all clients on one session

    @property
    def sessions(self) -> int:
        return self.concurrency if self.spread else 1

    @property
    def label(self) -> str:
        where = f"{self.sessions} sessions" if self.spread else "1 session"
        return f"{self.mode}, c={self.concurrency}, {where}"


def cases(concurrencies: Sequence[int]) -> list[Case]:
    found = []
    for mode in ("identical", "changing"):
        for c in concurrencies:
            found.append(Case(mode, c, spread=False))
            if c > 1:
                found.append(Case(mode, c, spread=True))
    return found


class Turns:
    """Which session a client saves next, and which of the two registers it sends.

    Each session alternates A, B, A, ... in the order saves are sent to it, over
    warm-up and measurement alike (``identical`` always sends A).
    """

    def __init__(self, sessions: Sequence[Any], mode: str) -> None:
        self.sessions = list(sessions)
        self.mode = mode
        self.sent = [0] * len(self.sessions)

    def prime(self) -> list[Any]:
        """Every session, to be sent register A once before the clients start."""
        self.sent = [1] * len(self.sessions)
        return list(self.sessions)

    def next(self, worker: int) -> tuple[Any, int]:
        index = worker % len(self.sessions)
        turn = self.sent[index]
        self.sent[index] += 1
        return self.sessions[index], (turn % 2 if self.mode == "changing" else 0)


def register_json(referrals: Sequence[UUID]) -> list[bytes]:
    return [
        json.dumps(
            [
                {"referral_id": str(referral_id), "status": status}
                for referral_id, status in zip(referrals, register, strict=True)
            ]
        ).encode()
        for register in (REGISTER_A, REGISTER_B)
    ]


async def measure_http(
    target: str,
    base: str,
    sessions: Sequence[str],
    case: Case,
    bodies: list[bytes],
    headers: dict[str, str],
    args: argparse.Namespace,
    measuring: Callable[[], Awaitable[None]] | None = None,
) -> Measured:
    """One first save per session (one at a time), a warm-up, ``measuring()``, the saves.

    The first save of a session inserts its marks; it is made one session at a
    time so that the clients measure re-saves and corrections only (first saves
    made at once are probed separately: see ``first_saves_at_once``).
    """
    import httpx

    turns = Turns(sessions, case.mode)
    limits = httpx.Limits(
        max_connections=case.concurrency, max_keepalive_connections=case.concurrency
    )
    all_headers = {**headers, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT, limits=limits) as http:

        async def send(worker: int) -> str | None:
            session_id, which = turns.next(worker)
            response = await http.put(
                f"/sessions/{session_id}/attendance", content=bodies[which], headers=all_headers
            )
            if response.status_code != 200:
                return f"HTTP {response.status_code}: {response.text[:200]}"
            return None

        for session_id in turns.prime():
            response = await http.put(
                f"/sessions/{session_id}/attendance", content=bodies[0], headers=all_headers
            )
            expect(response, 200, f"{target}: first save of session {session_id}")
        if args.warm_up:
            await drive(target, send, args.warm_up, case.concurrency, args.time_limit)
        if measuring is not None:
            await measuring()
        return await drive(target, send, args.requests, case.concurrency, args.time_limit)


async def measure_executemany(
    pool: Any,
    upsert: str,
    sessions: Sequence[UUID],
    case: Case,
    rows_for: Callable[[UUID, int], list[tuple[Any, ...]]],
    args: argparse.Namespace,
) -> Measured:
    turns = Turns(sessions, case.mode)
    connections = [await pool.acquire() for _ in range(case.concurrency)]
    try:

        async def send(worker: int) -> str | None:
            session_id, which = turns.next(worker)
            await connections[worker].executemany(upsert, rows_for(session_id, which))
            return None

        for session_id in turns.prime():
            await connections[0].executemany(upsert, rows_for(session_id, 0))
        if args.warm_up:
            await drive("executemany", send, args.warm_up, case.concurrency, args.time_limit)
        return await drive("executemany", send, args.requests, case.concurrency, args.time_limit)
    finally:
        for connection in connections:
            await pool.release(connection)


async def first_saves_at_once(
    setup: Setup, bodies: list[bytes], clients: int, rounds: int
) -> dict[str, Any]:
    """``clients`` fresh sessions of the group, each sent its first register at the same time.

    A first save inserts the marks (each insert takes a key-share lock on the
    person's referral row, as every foreign key check does) and then locks the
    same referral rows for update to derive milestones: two such saves can wait
    on each other. Reported as the answers' status codes and the slowest answer.
    """
    import httpx

    statuses: Counter[int] = Counter()
    slowest = 0.0
    headers = {**setup.facilitator_headers, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=setup.service, timeout=HTTP_TIMEOUT, limits=limits
    ) as http:

        async def first_save(session_id: str) -> None:
            nonlocal slowest
            started = time.perf_counter()
            response = await http.put(
                f"/sessions/{session_id}/attendance", content=bodies[0], headers=headers
            )
            slowest = max(slowest, time.perf_counter() - started)
            statuses[response.status_code] += 1

        for _ in range(rounds):
            sessions = await new_sessions(setup, clients)
            async with asyncio.timeout(HTTP_TIMEOUT + 5):
                await asyncio.gather(*(first_save(s) for s in sessions))
    return {
        "clients": clients,
        "rounds": rounds,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "slowest_ms": round(slowest * 1000, 1),
    }


async def corrections_recorded(connection: Any) -> int:
    """Attendance lines the service has corrected so far (one audit row each)."""
    return int(
        await connection.fetchval(
            "SELECT count(*) FROM audit_event"
            " WHERE record_type = 'attendance' AND action = 'update'"
        )
    )


# ---------------------------------------------------------------- in-process breakdown


def query_label(sql: str) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    if text.startswith("SELECT pg_advisory_unlock_all()") or text.startswith("RESET ALL"):
        return "(pool release: asyncpg connection reset)"
    if text.upper() in {"BEGIN;", "BEGIN", "COMMIT;", "COMMIT"} or text.startswith("BEGIN"):
        return text.rstrip(";")
    text = re.sub(r'"', "", text)
    return text[:110] + ("..." if len(text) > 110 else "")


async def breakdown(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    """``save_register`` called in-process (no HTTP, no auth), one call at a time.

    Two passes over the same calls: one plain (the time per call), one with an
    asyncpg query logger on every pooled connection (the statements, and the
    time spent waiting for each; logging itself adds a little to that pass).
    """
    from programme.delivery import services as register
    from programme.delivery.rules import Mark
    from programme.delivery.schemas import AttendanceMark
    from programme.platform import database
    from programme.platform.accounts.services import principal_for
    from programme.platform.clock import today

    count = args.breakdown_saves
    if not count:
        return {}
    logged: list[tuple[str, float]] = []

    def on_query(record: Any) -> None:
        logged.append((record.query, record.elapsed))

    async def attach(connection: Any) -> None:
        connection.add_query_logger(on_query)

    engine = database.engine()
    identical, changing = (UUID(s) for s in await new_sessions(setup, 2))
    now = today()
    registers = [
        [
            AttendanceMark(referral_id=referral_id, status=Mark(status))
            for referral_id, status in zip(setup.referrals, marks, strict=True)
        ]
        for marks in (REGISTER_A, REGISTER_B)
    ]
    Pass = dict[str, tuple[float, list[tuple[str, float]]]]

    async def one_pass(init: Any) -> Pass:
        await engine.start_connection_pool(min_size=1, max_size=2, init=init)
        try:
            principal = await principal_for(setup.facilitator_id)
            assert principal is not None
            calls: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
                (
                    "auth lookup (principal_for, every request)",
                    lambda i: principal_for(setup.facilitator_id),
                ),
                (
                    "save_register, identical",
                    lambda i: register.save_register(identical, registers[0], principal, now),
                ),
                (
                    # 10 warm-up calls end on register B, so the first measured one
                    # (A) is a correction again, and so is every one after it.
                    "save_register, changing",
                    lambda i: register.save_register(changing, registers[i % 2], principal, now),
                ),
            ]
            found: Pass = {}
            for label, work in calls:
                for i in range(10):
                    await work(i)
                await asyncio.sleep(0.05)  # the query loggers run via call_soon
                first = len(logged)
                started = time.perf_counter()
                for i in range(count):
                    await work(i)
                elapsed = time.perf_counter() - started
                await asyncio.sleep(0.05)
                found[label] = (elapsed, logged[first:])
            return found
        finally:
            await engine.close_connection_pool()

    plain = await one_pass(None)
    traced = await one_pass(attach)
    results: dict[str, Any] = {}
    for label, (elapsed, _) in plain.items():
        traced_elapsed, queries = traced[label]
        per_statement: dict[str, list[float]] = {}
        for sql, seconds in queries:
            per_statement.setdefault(query_label(sql), []).append(seconds)
        results[label] = {
            "calls": count,
            "ms_per_call": elapsed / count * 1000,
            "ms_per_call_traced": traced_elapsed / count * 1000,
            "statements_per_call": len(queries) / count,
            "sql_ms_per_call": sum(seconds for _, seconds in queries) / count * 1000,
            "top": sorted(
                (
                    {
                        "statement": name,
                        "per_call": len(times) / count,
                        "ms_per_call": sum(times) / count * 1000,
                    }
                    for name, times in per_statement.items()
                ),
                key=lambda row: -row["ms_per_call"],
            )[:10],
        }
    return results


# ---------------------------------------------------------------- the run


async def run(
    args: argparse.Namespace,
    dsn: str,
    service: str,
    bare: str | None,
    users: dict[str, tuple[str, str]],
    tag: str,
) -> dict[str, Any]:
    import asyncpg
    from register_bare_app import upsert_sql

    setup = await build_setup(service, bare, users, tag)
    log(f"set up {len(setup.referrals)} engaged referrals in group {setup.group_id}")
    upsert = upsert_sql(TABLE)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max(args.concurrency) + 1)
    results: dict[str, Any] = {"cases": []}
    try:
        async with pool.acquire() as connection:
            await connection.execute(f'DROP TABLE IF EXISTS "{TABLE}"')
            await connection.execute(f'CREATE TABLE "{TABLE}" (LIKE attendance INCLUDING ALL)')
            results["postgres"] = await connection.fetchval("SHOW server_version")
        bodies = register_json(setup.referrals)
        row_sets = [
            [
                (referral_id, status, setup.facilitator_id)
                for referral_id, status in zip(setup.referrals, marks, strict=True)
            ]
            for marks in (REGISTER_A, REGISTER_B)
        ]

        def rows_for(session_id: UUID, which: int) -> list[tuple[Any, ...]]:
            return [(session_id, *row) for row in row_sets[which]]

        for case in cases(args.concurrency):
            sessions = await new_sessions(setup, case.sessions)
            log(f"case {case.label}: service")
            before = 0

            async def count_before() -> None:
                nonlocal before
                async with pool.acquire() as connection:
                    before = await corrections_recorded(connection)

            measured = [
                await measure_http(
                    "service",
                    service,
                    sessions,
                    case,
                    bodies,
                    setup.facilitator_headers,
                    args,
                    count_before,
                )
            ]
            async with pool.acquire() as connection:
                corrected = await corrections_recorded(connection) - before
                rows = await connection.fetchval(
                    "SELECT count(*) FROM attendance WHERE session = ANY($1::uuid[])",
                    [UUID(s) for s in sessions],
                )
            if bare:
                log(f"case {case.label}: bare HTTP")
                measured.append(
                    await measure_http(
                        "bare HTTP",
                        bare,
                        [str(uuid4()) for _ in sessions],
                        case,
                        bodies,
                        {},
                        args,
                    )
                )
            log(f"case {case.label}: executemany")
            measured.append(
                await measure_executemany(
                    pool, upsert, [uuid4() for _ in sessions], case, rows_for, args
                )
            )
            saves = max(1, measured[0].ok)
            results["cases"].append(
                {
                    "case": case.label,
                    "mode": case.mode,
                    "concurrency": case.concurrency,
                    "sessions": case.sessions,
                    "service_rows_marked": rows,
                    "service_lines_corrected_per_save": round(corrected / saves, 2),
                    "targets": [m.summary() for m in measured],
                }
            )
            for m in measured:
                if m.failures or m.cut_short:
                    log(f"  {m.target}: {len(m.failures)} failures, cut short: {m.cut_short}")
        clients = max(args.concurrency)
        if clients > 1 and args.first_save_rounds:
            log(f"first saves of {clients} fresh sessions at once, {args.first_save_rounds} times")
            results["first_saves_at_once"] = await first_saves_at_once(
                setup, bodies, clients, args.first_save_rounds
            )
        log("in-process breakdown of save_register")
        results["breakdown"] = await breakdown(setup, args)
    finally:
        async with pool.acquire() as connection:
            await connection.execute(f'DROP TABLE IF EXISTS "{TABLE}"')
        await pool.close()
    return results


# ---------------------------------------------------------------- the report


def markdown_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def print_report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(
        f"\nMachine: {machine['nproc']} CPUs, Python {machine['python']}, "
        f"{machine['platform']}, PostgreSQL {results.get('postgres')} ({machine['database']}); "
        f"code {machine['code']}; {results['requests']} measured saves per target and case "
        f"after {results['warm_up']} warm-up saves; register of {REGISTER_SIZE}.\n"
    )
    rows = []
    for case in results["cases"]:
        by_target = {t["target"]: t for t in case["targets"]}
        base = by_target["executemany"]["time_per_save_ms"]
        bare = by_target.get("bare HTTP", {}).get("time_per_save_ms")
        for target in case["targets"]:
            cost = target["time_per_save_ms"]
            rows.append(
                [
                    case["case"],
                    target["target"],
                    f"{target['per_second']:,.0f}",
                    f"{target['p50_ms']:.2f}",
                    f"{target['p95_ms']:.2f}",
                    f"{target['mean_ms']:.2f}",
                    f"{cost / base:.1f}x",
                    f"{cost / bare:.1f}x" if bare else "-",
                    target["non_200"] + (target["requested"] - target["done"]),
                ]
            )
    print(
        markdown_table(
            rows,
            [
                "case",
                "target",
                "saves/s",
                "p50 ms",
                "p95 ms",
                "mean ms",
                "vs executemany",
                "vs bare HTTP",
                "non-200",
            ],
        )
    )
    print(
        "\n'vs' columns: wall time per save (1 / saves per second) over the baseline's, "
        "same case, same run.\n"
    )
    for case in results["cases"]:
        print(
            f"- {case['case']}: service corrected {case['service_lines_corrected_per_save']} "
            f"lines per measured 200 save; {case['service_rows_marked']} attendance rows"
            " on its sessions"
        )
    failures = [
        (case["case"], t["target"], sample)
        for case in results["cases"]
        for t in case["targets"]
        for sample in t["failures_sample"]
    ]
    for where, target, sample in failures:
        print(f"  non-200 sample: {where} / {target}: {sample}")
    probe = results.get("first_saves_at_once")
    if probe:
        answers = ", ".join(f"{n} x HTTP {code}" for code, n in probe["statuses"].items())
        print(
            f"\nFirst saves of {probe['clients']} fresh sessions of the group at once, "
            f"{probe['rounds']} rounds: {answers}; slowest answer {probe['slowest_ms']:.0f} ms."
        )
    if results.get("breakdown"):
        print(
            "\nIn-process (no HTTP), one call at a time; statements logged by asyncpg in a"
            " second pass ('in SQL' is the wait for each statement's answer):\n"
        )
        rows = [
            [
                label,
                f"{b['ms_per_call']:.2f}",
                f"{b['ms_per_call_traced']:.2f}",
                f"{b['statements_per_call']:.1f}",
                f"{b['sql_ms_per_call']:.2f}",
                f"{b['ms_per_call_traced'] - b['sql_ms_per_call']:.2f}",
            ]
            for label, b in results["breakdown"].items()
        ]
        print(
            markdown_table(
                rows,
                [
                    "call",
                    "ms per call",
                    "ms (logged pass)",
                    "SQL statements",
                    "in SQL ms",
                    "outside SQL ms",
                ],
            )
        )
        for label, b in results["breakdown"].items():
            if not label.startswith("save_register"):
                continue
            print(f"\nTop statements by time, {label} (per call):\n")
            print(
                markdown_table(
                    [
                        [f"{row['per_call']:.1f}", f"{row['ms_per_call']:.2f}", row["statement"]]
                        for row in b["top"]
                    ],
                    ["count", "ms", "statement"],
                )
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="inspire-bench-reg-"))
    embedded = not os.environ.get("DATABASE_URL")
    if embedded:
        # Before any project module is imported: settings are read once.
        os.environ["INSPIRE_DATA_DIR"] = str(work_dir)
    else:
        os.environ.setdefault("INSPIRE_SECRET_KEY", secrets.token_urlsafe(48))
        os.environ.setdefault("INSPIRE_ENCRYPTION_KEY", secrets.token_urlsafe(48))
    signal.signal(signal.SIGTERM, _terminated)
    sys.path.insert(0, str(BENCH_DIR))
    children: list[Child] = []
    started = time.monotonic()
    try:
        from programme.platform import database

        dsn = database.database_url()  # starts the embedded server, held for the whole run
        log(f"database: {'embedded in ' + str(work_dir) if embedded else 'DATABASE_URL'}")
        tag = secrets.token_hex(3)
        users = {
            "referrer": (f"bench-referrer-{tag}", secrets.token_urlsafe(18)),
            "facilitator": (f"bench-facilitator-{tag}", secrets.token_urlsafe(18)),
        }
        add_user(*users["referrer"], "referrer", "Bench Police")
        add_user(*users["facilitator"], "facilitator", None)
        env = dict(os.environ)
        service_port = free_port()
        service_child = start_child(
            "inspire-serve",
            [*inspire_command(), "serve", "--host", "127.0.0.1", "--port", str(service_port)],
            env,
            work_dir,
            children,
        )
        bare_child = None
        if not args.no_bare_http:
            bare_port = free_port()
            bare_env = {
                **env,
                "BENCH_DSN": dsn,
                "BENCH_REGISTER_TABLE": TABLE,
            }
            bare_child = start_child(
                "bare-app",
                [sys.executable, str(BARE_APP), "--port", str(bare_port)],
                bare_env,
                work_dir,
                children,
            )
        service = f"http://127.0.0.1:{service_port}"
        bare = f"http://127.0.0.1:{bare_port}" if bare_child else None

        async def everything() -> dict[str, Any]:
            await wait_healthy(service, service_child)
            if bare and bare_child:
                await wait_healthy(bare, bare_child)
            return await run(args, dsn, service, bare, users, tag)

        results = asyncio.run(everything())
        results.update(
            requests=args.requests,
            warm_up=args.warm_up,
            machine={
                "nproc": len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(terse=True),
                "database": "embedded pgserver" if embedded else "DATABASE_URL",
                "code": code_version(),
                "service_pool": int(os.environ.get("INSPIRE_DB_POOL_SIZE") or 10),
            },
        )
        print_report(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        bad = sum(
            t["non_200"] + (t["requested"] - t["done"])
            for case in results["cases"]
            for t in case["targets"]
        )
        return 1 if bad else 0
    except Exception:
        for child in children:
            log(f"--- last lines of {child.name} ---\n{child.tail()}")
        raise
    finally:
        stop_children(children)
        if args.server_log and children:
            shutil.copyfile(children[0].log_path, args.server_log)
        if embedded:
            stop_embedded_server(work_dir)
        shutil.rmtree(work_dir, ignore_errors=True)
        log(f"done in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
