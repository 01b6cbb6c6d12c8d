"""What every benchmark here shares: the throwaway run, the database, servers, statistics.

- the run: a fresh data directory (own embedded PostgreSQL) set as
  INSPIRE_DATA_DIR before any project module is imported, or DATABASE_URL only
  with ``--allow-emptying-database`` where the benchmark empties every table;
  stopped and deleted at the end, also on error, Ctrl-C or SIGTERM;
- the database: migrating it with a small pool, plain connections, emptying
  every table, bare text tables, EXPLAIN plans;
- servers: free ports on 127.0.0.1, ``inspire serve``, ``inspire user add`` and
  the bare baseline apps as subprocesses, each stopped by its own pid;
- figures: timing, medians, percentiles, Markdown tables, the machine and the
  code version, progress lines on stderr, JSON output.

This module imports nothing but the standard library when it is imported, so an
entry script can import it before it sets INSPIRE_DATA_DIR, and the bare apps
can use it without loading the project. The project's platform modules are
named only here (``PLATFORM_DATABASE``, ``today``, and the CLI's module in
``inspire_command``): the one place to follow them if they move. The project's
code each benchmark measures is imported at the top of that benchmark's one
module, and nowhere else: ``import_bench`` (referrals), ``register_breakdown``
(programme delivery), ``national_quarterly`` and ``national_survival``
(analysis).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import FrameType, ModuleType, TracebackType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
PLATFORM_DATABASE = "programme.platform.database"
THROWAWAY_KEYS = {
    "INSPIRE_SECRET_KEY": "bench-signing-key-not-for-production-use-0123456789",
    "INSPIRE_ENCRYPTION_KEY": "bench-encryption-key-not-for-production-0123456789",
    "INSPIRE_PSEUDONYM_KEY": "bench-pseudonym-key-not-for-production-0123456789",
}
"""Keys for a run on DATABASE_URL where none are set (the embedded set-up makes its own)."""
SERVER_START_LIMIT = 120.0
SERVER_STOP_LIMIT = 20.0


# ---------------------------------------------------------------- progress and output


def log(message: str) -> None:
    """A progress line on stderr (stdout keeps the report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def add_common_arguments(parser: argparse.ArgumentParser, *, empties_database: bool) -> None:
    """``--json`` and, for a benchmark that empties every table, ``--allow-emptying-database``."""
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    if empties_database:
        parser.add_argument(
            "--allow-emptying-database",
            action="store_true",
            help="with DATABASE_URL: agree that every table in it is emptied",
        )


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(results, indent=2, default=str))


# ---------------------------------------------------------------- the throwaway run


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def throwaway_run(
    program: str,
    *,
    empties_database: bool,
    allowed: bool = False,
    prefix: str = "inspire-bench-",
) -> Iterator[Path]:
    """The run's own data directory, set as INSPIRE_DATA_DIR; yields its path.

    Call this before any project module is imported: the settings are read once.
    With DATABASE_URL set, a benchmark that empties every table refuses to start
    (exit status 2) unless ``allowed``; throwaway keys are set where none are.
    At the end, also on error, Ctrl-C or SIGTERM, the embedded PostgreSQL is
    stopped and the directory deleted.
    """
    if os.environ.get("DATABASE_URL"):
        if empties_database and not allowed:
            print(
                f"{program}: DATABASE_URL is set and this benchmark empties every table in it;"
                " add --allow-emptying-database if it is a scratch database",
                file=sys.stderr,
            )
            raise SystemExit(2)
        for name, value in THROWAWAY_KEYS.items():
            os.environ.setdefault(name, value)
    # A short path (the embedded server's Unix socket lives in it) nobody else uses.
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["INSPIRE_DATA_DIR"] = str(data_dir)
    # The benchmarks seed months of history over the API, as it would have come in day by
    # day; the bound on back-dating (a rule for people, measured nowhere here) is lifted.
    os.environ.setdefault("INSPIRE_BACKDATE_DAYS", "36500")
    signal.signal(signal.SIGTERM, _terminated)
    started = time.monotonic()
    try:
        yield data_dir
    finally:
        stop_embedded_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        log(f"done in {time.monotonic() - started:.0f}s")


def stop_embedded_server(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL this run started, before its directory is deleted."""
    database = sys.modules.get(PLATFORM_DATABASE)
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


# ---------------------------------------------------------------- the project's platform


def project_database() -> ModuleType:
    """``programme.platform.database`` (import only once INSPIRE_DATA_DIR is set)."""
    return importlib.import_module(PLATFORM_DATABASE)


def today() -> date:
    """Today where the programme runs, as the project works it out."""
    from programme.platform.clock import today as programme_today

    return programme_today()


def inspire_command() -> list[str]:
    """The ``inspire`` console script next to this interpreter (the venv's), else on PATH,
    else the project's CLI through this interpreter."""
    beside = Path(sys.executable).with_name("inspire")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("inspire")
    if found is not None:
        return [found]
    return [sys.executable, "-c", "from programme.cli import main; main()"]


def add_user(
    username: str, password: str, role: str, agency: str | None, env: dict[str, str] | None = None
) -> None:
    """``inspire user add`` with the password on stdin."""
    command = [*inspire_command(), "user", "add", username, "--role", role]
    if agency:
        command += ["--agency", agency]
    done = subprocess.run(
        [*command, "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"inspire user add {username} failed: {done.stderr.strip()}")
    if done.stdout.strip():
        log(done.stdout.strip())


# ---------------------------------------------------------------- the database


@asynccontextmanager
async def migrated_pool(max_size: int = 4) -> AsyncIterator[Any]:
    """Apply the migrations, then the engine's pool for the block; yields the engine."""
    database = project_database()
    log("migrating the benchmark database")
    await database.migrate()
    engine = database.engine()
    await engine.start_connection_pool(min_size=0, max_size=max_size)
    try:
        yield engine
    finally:
        await engine.close_connection_pool()


async def connect(**options: Any) -> Any:
    """A plain asyncpg connection to the benchmark's database (not from the pool)."""
    import asyncpg

    return await asyncpg.connect(**project_database().engine().config, **options)


async def empty_every_table() -> None:
    """Empty every table but the migrations table, as tests/conftest.py does.

    ``session_replication_role = replica`` switches off triggers for this one
    transaction: the only way past the audit table's append-only rule.
    """
    connection = await connect()
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'migration'"
        )
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


async def _execute(*statements: str) -> None:
    connection = await connect()
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def create_text_table(name: str, columns: Sequence[str]) -> None:
    """A bare table: one nullable text column per name, no keys, no indexes."""
    body = ", ".join(f'"{column}" text' for column in columns)
    await _execute(f'DROP TABLE IF EXISTS "{name}"', f'CREATE TABLE "{name}" ({body})')


async def drop_table(name: str) -> None:
    await _execute(f'DROP TABLE IF EXISTS "{name}"')


async def count_rows(table: str) -> int:
    connection = await connect()
    try:
        return int(await connection.fetchval(f'SELECT count(*) FROM "{table}"'))
    finally:
        await connection.close()


async def explain(connection: Any, sql: str, *params: Any) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of ``sql``, as text."""
    rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
    return "\n".join(row[0] for row in rows)


def execution_ms(plan: str) -> float:
    """The execution time an EXPLAIN ANALYZE text reports, in milliseconds."""
    return float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1))  # type: ignore[union-attr]


def index_usage(plan: str) -> list[str]:
    """Which tables were read how, from an EXPLAIN text (sorted, each once)."""
    nodes = []
    pattern = (
        r"(Parallel )?(Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan)"
        r"(?: using (\S+))? on (\S+)"
    )
    for match in re.finditer(pattern, plan):
        kind = (match.group(1) or "") + match.group(2)
        if match.group(2) == "Bitmap Index Scan":
            # "Bitmap Index Scan on <index>"
            nodes.append(f"{kind} on {match.group(4)}")
        elif match.group(3):
            nodes.append(f"{kind} using {match.group(3)} on {match.group(4)}")
        else:
            nodes.append(f"{kind} on {match.group(4)}")
    return sorted(set(nodes))


# ---------------------------------------------------------------- the machine and the code


def code_version() -> str:
    """The commit measured, marked dirty when the working tree has changes."""
    try:
        found = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip()


async def machine(*settings: str) -> dict[str, Any]:
    """CPUs, Python, platform, PostgreSQL (and the named settings of it), database, code."""
    connection = await connect()
    try:
        shown = {
            name: await connection.fetchval(f"SHOW {name}")
            for name in ("server_version", *settings)
        }
    finally:
        await connection.close()
    found: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": shown.pop("server_version"),
        "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded",
        "code": code_version(),
    }
    if settings:
        found["postgresql_settings"] = shown
    return found


def describe_machine(found: dict[str, Any]) -> str:
    """One line from ``machine()``'s figures (and the memory, where the run added it)."""
    memory = f", {found['memory_gb']} GB" if "memory_gb" in found else ""
    settings = f", {found['postgresql_settings']}" if "postgresql_settings" in found else ""
    return (
        f"{found['nproc']} CPUs{memory}, Python {found['python']}, PostgreSQL "
        f"{found['postgresql']} ({found['database']}{settings}), {found['platform']}, "
        f"code {found['code']}"
    )


# ---------------------------------------------------------------- timing and statistics


class Stopwatch:
    def __init__(self) -> None:
        self.seconds = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started


@contextmanager
def timed(into: dict[str, list[float]], name: str) -> Iterator[None]:
    """Append the block's seconds to ``into[name]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        into.setdefault(name, []).append(time.perf_counter() - started)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- servers


def free_port(taken: Sequence[int] = ()) -> int:
    """A TCP port on 127.0.0.1 nobody is listening on right now, none of ``taken``."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port


@dataclass
class Server:
    """A server subprocess listening on 127.0.0.1, its output in ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_until_up(self, limit: float = SERVER_START_LIMIT) -> None:
        """Poll ``/health`` until it answers 200; fail if the process exits or at ``limit``."""
        import httpx

        deadline = time.monotonic() + limit
        async with httpx.AsyncClient(base_url=self.url, trust_env=False, timeout=5) as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
                    )
                try:
                    if (await http.get("/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not answer /health:\n{self.tail()}")
                await asyncio.sleep(0.2)


class Servers:
    """Server subprocesses, each on a free port of 127.0.0.1 with its log in ``log_dir``.

    Used as a context manager: on the way out every one still running gets
    SIGTERM (uvicorn shuts down cleanly), then SIGKILL after SERVER_STOP_LIMIT,
    by its own pid; on an error the last lines of each log are shown first.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Server] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Server:
        """Run ``command`` followed by ``--port <a free port>``."""
        port = free_port([server.port for server in self.started])
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as output:
            process = subprocess.Popen(
                [*command, "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        server = Server(name, process, log_path, port)
        self.started.append(server)
        return server

    def start_service(self, name: str, env: dict[str, str]) -> Server:
        """``inspire serve`` on 127.0.0.1."""
        return self.start(name, [*inspire_command(), "serve", "--host", HOST], env)

    def start_bare_app(self, name: str, script: str, env: dict[str, str]) -> Server:
        """One of the bare baseline apps in bench/, with this interpreter."""
        return self.start(name, [sys.executable, str(BENCH_DIR / script)], env)

    def stop(self) -> None:
        for server in self.started:
            if server.process.poll() is None:
                server.process.terminate()
        for server in self.started:
            try:
                server.process.wait(timeout=SERVER_STOP_LIMIT)
            except subprocess.TimeoutExpired:
                log(f"{server.name} (pid {server.process.pid}) did not stop; killing it")
                server.process.kill()
                server.process.wait(timeout=10)

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None:
            for server in self.started:
                log(f"--- last lines of {server.name} ---\n{server.tail()}")
        self.stop()


# ---------------------------------------------------------------- the bare baseline apps


def bare_app(*handlers: Any) -> Any:
    """A Litestar app of ``handlers`` plus ``GET /health``, with an asyncpg pool as
    ``state.pool`` on BENCH_DSN, sized like the service's (INSPIRE_DB_POOL_SIZE,
    default 10)."""
    import asyncpg
    from litestar import Litestar, get

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def open_pool(app: Litestar) -> None:
        app.state.pool = await asyncpg.create_pool(
            os.environ["BENCH_DSN"],
            min_size=0,
            max_size=int(os.environ.get("INSPIRE_DB_POOL_SIZE") or 10),
        )

    async def close_pool(app: Litestar) -> None:
        await app.state.pool.close()

    return Litestar(
        route_handlers=[*handlers, health], on_startup=[open_pool], on_shutdown=[close_pool]
    )


def serve_bare_app(app: Any, description: str) -> None:
    """``--port N``: serve ``app`` on 127.0.0.1 with uvicorn as ``inspire serve`` does
    (uvicorn's defaults, log level warning, access log off)."""
    import uvicorn

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host=HOST, port=args.port, log_level="warning", access_log=False)
