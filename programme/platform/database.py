"""Where the database is, and keeping its schema current.

With ``DATABASE_URL`` set the service uses that server. Without it, an embedded
PostgreSQL (the ``pgserver`` wheel ships the server binaries) runs from the data
directory, so a new user needs nothing installed. Every process that asks for
the embedded server shares the one running instance, and the last of them to
let go stops it (``release_embedded_server``; pgserver's exit hook otherwise).
The workers of ``inspire serve --workers N`` do not ask: the parent started
it, and they connect to the address it hands them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

from programme.platform.settings import ConfigurationError, get_settings

log = logging.getLogger(__name__)

_embedded: Any = None
_releasing = threading.Lock()

# Any number will do as long as no other code in the database uses it.
_MIGRATION_LOCK = 7_046_530_021


class DatabaseUnreachable(Exception):
    """The database could not be reached, or the connection some work was on was lost.

    Raised in place of asyncpg's ``InterfaceError`` and ``InternalClientError``
    only when the connection is gone: the same two types also mean a mistake in
    our own code (too many bind parameters, a connection used after it went
    back to the pool), which must stay a logged 500.
    """


UNREACHABLE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnreachable,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.ConnectionFailureError,
    asyncpg.ClientCannotConnectError,
    asyncpg.ConnectionRejectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
"""The failures that mean "the database cannot be reached right now", as opposed
to a bad query or a bug: they become 503 answers and a retry, not 500s. Sockets
failing to connect (``OSError``) arrive as ``DatabaseUnreachable``."""

_AMBIGUOUS = (asyncpg.InterfaceError, asyncpg.InternalClientError)
"""asyncpg's errors that mean a lost connection or a programming mistake, by context."""

POOL_CLOSE_SECONDS = 2.0
"""How long closing the pool waits for connections still in use before cutting them."""

STOP_SECONDS = 3.0
"""How long the embedded PostgreSQL gets for a fast shutdown before an immediate one."""

RELEASE_SECONDS = 5.0
"""How long giving a connection back (its reset) may take before it is dropped instead."""


def embedded_server() -> Any:
    """Start (or join) the embedded PostgreSQL under the data directory."""
    global _embedded
    if _embedded is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        pgdata = get_settings().data_dir / "pgdata"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():
                # platformdirs warns about XDG_RUNTIME_DIR on servers; pgserver copes.
                warnings.simplefilter("ignore")
                _embedded = pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises bare exceptions with pg_ctl output
            raise ConfigurationError(
                f"could not start the embedded PostgreSQL in {pgdata}: {type(exc).__name__}"
            ) from exc
    return _embedded


def client_tool(name: str) -> Path:
    """PostgreSQL's own client program ``name`` (``pg_dump``, ``pg_restore``, ``psql``).

    For the embedded server, the copy shipped beside it, so the versions always
    match. With ``DATABASE_URL``, the one on ``PATH``: the server's own tools
    are the ones to trust, and we cannot ship them for every version.
    """
    if get_settings().uses_embedded_database:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        shipped = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
        if shipped.is_file():
            return shipped
        raise ConfigurationError(f"the embedded PostgreSQL has no {name} (reinstall pgserver)")
    found = shutil.which(name)
    if found is None:
        raise ConfigurationError(
            f"{name} is not on PATH: with DATABASE_URL, install the PostgreSQL client "
            f"tools matching the server, or use the server's own backup and restore"
        )
    return Path(found)


def release_embedded_server() -> None:
    """Let go of the embedded PostgreSQL, stopping it if no other live process uses it.

    pgserver stops the server when its last user exits normally, but it stops
    the postmaster it saw at start-up: after an outage the server running now
    may be another one, and a user killed without exiting normally stays
    counted for ever. So this stops whatever postmaster runs in the data
    directory when no live process but this one still holds it, and bounds the
    time that takes: a fast shutdown, then an immediate one.
    """
    global _embedded
    with _releasing:  # the serving thread and a stop watchdog may both get here
        server, _embedded = _embedded, None
    if server is None:
        return
    from pgserver.utils import PostmasterInfo

    holders = server.global_process_id_list.get()
    others = [pid for pid in holders if pid != os.getpid() and _alive(pid)]
    if not others:
        running = PostmasterInfo.read_from_pgdata(server.pgdata)
        if running is not None and running.is_running():
            _stop_postmaster(server, running.pid)
    # pgserver's own stop would wait on the postmaster it saw at start-up (and a
    # minute for pg_ctl): with the stopping done above, it only drops our handle.
    server.cleanup_mode = None
    server.cleanup()


def _stop_postmaster(server: Any, pid: int) -> None:
    from pgserver._commands import POSTGRES_BIN_PATH

    seconds = int(STOP_SECONDS)
    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata)]
    try:
        subprocess.run(  # noqa: S603 (pgserver's own pg_ctl, on our data directory)
            [*command, "-m", "fast", "-w", "-t", str(seconds), "stop"],
            user=server.system_user,  # pgserver runs PostgreSQL as its own user under root
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=seconds + 1,
            check=True,
        )
        return
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("embedded PostgreSQL slow to stop (%s): stopping it now", type(exc).__name__)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: crash-safe, recovered on next start
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running as another user (pgserver's, under root): still there
        return True
    return True


def database_url() -> str:
    """The connection string of the database this process should use."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    if settings.embedded_database_uri:
        # A worker of ``inspire serve --workers N``: the parent owns the server.
        return settings.embedded_database_uri
    return str(embedded_server().get_uri())


class _Engine(PostgresEngine):
    """Piccolo's PostgreSQL engine, finding its server on first use rather than at import.

    Importing ``piccolo_conf`` (as every ``piccolo`` command does, even
    ``piccolo migrations new``) must not start the embedded server.
    """

    _resolved: dict[str, Any] | None = None

    async def check_version(self) -> None:
        """Piccolo connects at construction to check this; pgserver's 16 and CI's are fine."""

    async def prep_database(self) -> None:
        """Nothing to create: no extensions are needed."""

    @property
    def config(self) -> dict[str, Any]:
        if self._resolved is None:
            self._resolved = {"dsn": database_url()}
        return self._resolved

    @config.setter
    def config(self, value: dict[str, Any]) -> None:
        self._resolved = value or None

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return _Transaction(engine=self, allow_nested=allow_nested)

    async def _run_in_pool(self, query: str, args: Sequence[Any] | None = None) -> Any:
        pool = self.pool
        connection = await _acquire(pool)
        try:
            return await connection.fetch(query, *(args or ()))
        except _AMBIGUOUS as exc:
            if _lost(connection, exc):
                raise DatabaseUnreachable(type(exc).__name__) from exc
            raise
        finally:
            await _give_back(pool, connection)


class _Transaction(PostgresTransaction):
    """Piccolo's transaction, giving its connection back to the pool however it ends.

    Piccolo's own keeps the connection out of the pool for good when BEGIN,
    COMMIT or ROLLBACK fails, as they do when the server goes away: each outage
    then takes connections from the pool, and closing the pool waits for them
    for ever. Errors that only mean the connection was lost become
    ``DatabaseUnreachable``.
    """

    __slots__ = ("_pool",)

    async def __aenter__(self) -> PostgresTransaction:
        if self._parent is not None:
            return self._parent
        pool = self._pool = self.engine.pool
        if pool is None:
            return await super().__aenter__()
        connection = self.connection = await _acquire(pool)
        try:
            self.transaction = connection.transaction()
            await self.begin()
        except BaseException as exc:
            lost = _lost(connection, exc)
            await _give_back(pool, connection)
            if lost:
                raise DatabaseUnreachable(type(exc).__name__) from exc
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return exception is None
        pool = self._pool
        if pool is None:
            return await super().__aexit__(exception_type, exception, traceback)
        try:
            if exception is None:
                if not self._committed and not self._rolled_back:
                    try:
                        await self.commit()
                    except _AMBIGUOUS as exc:
                        if _lost(self.connection, exc):
                            raise DatabaseUnreachable(type(exc).__name__) from exc
                        raise
            else:
                if not self._rolled_back:
                    # The error that ended the work is the one to report; the
                    # connection is reset or dropped on its way back anyway.
                    with contextlib.suppress(Exception):
                        await self.rollback()
                if _lost(self.connection, exception):
                    raise DatabaseUnreachable(type(exception).__name__) from exception
        finally:
            self.engine.current_transaction.reset(self.context)
            await _give_back(pool, self.connection)
        return False


async def _acquire(pool: Any) -> Any:
    """A connection from the pool; a server that cannot be reached is DatabaseUnreachable."""
    try:
        return await pool.acquire()
    except OSError as exc:  # refused, no socket, timed out (TimeoutError is an OSError)
        raise DatabaseUnreachable(type(exc).__name__) from exc


def _lost(connection: Any, error: BaseException) -> bool:
    """Whether ``error``, raised while we still hold ``connection``, means it is gone."""
    if not isinstance(error, _AMBIGUOUS):
        return False
    if isinstance(error, asyncpg.InternalClientError):
        # The protocol is out of step with the server: in practice the server
        # sent a fatal error and is closing the connection (a shutdown). The
        # connection cannot be used again either way.
        _drop(connection)
        return True
    try:
        return bool(connection.is_closed())
    except asyncpg.InterfaceError:
        # Detached from its connection: asyncpg gives a pooled connection back
        # by itself when it closes, and we have not given this one back yet.
        return True


def _drop(connection: Any) -> None:
    with contextlib.suppress(asyncpg.InterfaceError):
        connection.terminate()


async def _give_back(pool: Any, connection: Any) -> None:
    """Return ``connection`` to the pool whatever state it is in, never raising."""
    try:
        await pool.release(connection, timeout=RELEASE_SECONDS)
    except Exception as exc:
        # Its reset failed, so the connection is unusable: dropping it gives
        # its place in the pool back. The work's own outcome is already known.
        log.warning("database connection dropped on release: %s", type(exc).__name__)
        _drop(connection)


async def close_pool(seconds: float = POOL_CLOSE_SECONDS) -> None:
    """Close the engine's pool, cutting connections still in use after ``seconds``.

    asyncpg's graceful close waits for every connection to come back, so one
    held by a stuck request would keep the process from stopping.
    """
    db = engine()
    pool = db.pool
    if pool is None:
        return
    try:
        await asyncio.wait_for(pool.close(), seconds)
    except Exception as exc:  # asyncpg terminates the pool when its close fails or times out
        log.warning("database pool closed by force: %s", type(exc).__name__)
        pool.terminate()
    finally:
        db.pool = None


# No extensions: UUIDs come from gen_random_uuid(), built into PostgreSQL 13+.
DB = _Engine(config={}, extensions=())
"""The one engine; ``piccolo_conf`` hands it to Piccolo."""


def engine() -> PostgresEngine:
    return DB


@contextlib.asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A raw asyncpg connection from the engine's pool, inside one transaction.

    For the reports' hand-written aggregate SQL, which needs asyncpg's own
    ``$1`` parameters and typed results rather than Piccolo's query builder.
    """
    async with engine().transaction() as transaction:
        yield transaction.connection


async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run one statement of a domain's ``queries`` module (``$1`` parameters).

    Inside a transaction it runs on the transaction's connection, so it sees
    and holds that transaction's locks; otherwise on a pooled connection.
    """
    async with connection() as conn:
        return await conn.fetch(sql, *args)


COPY_SLICE_ROWS = 2_000
"""Rows per COPY in ``copy_records``: a few milliseconds of encoding each."""


async def copy_records(
    connection: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
    *,
    slice_rows: int = COPY_SLICE_ROWS,
) -> None:
    """COPY ``records`` into ``table`` on ``connection``, ``slice_rows`` at a time.

    asyncpg encodes a COPY's records on the event loop and hands the loop back
    only when the socket is full, so one COPY of 200,000 rows held every other
    request (``/health`` included) for a large part of a second. Between slices
    the loop serves the others. On the caller's transaction: all or nothing still.
    """
    for start in range(0, len(records), slice_rows):
        await connection.copy_records_to_table(
            table, records=records[start : start + slice_rows], columns=list(columns)
        )


async def ping() -> bool:
    """Whether the database answers a trivial query right now."""
    try:
        await engine().run_ddl("SELECT 1")
    except UNREACHABLE_ERRORS:
        return False
    return True


def known_migrations() -> set[str]:
    """Every migration this version of the code has, as ``app:id`` (the migration table's terms)."""
    from piccolo.apps.migrations.commands.base import BaseMigrationManager

    finder = BaseMigrationManager()
    return {
        f"{app.app_name}:{migration_id}"
        for app in finder.get_app_configs()
        for migration_id in finder.get_migration_modules(app.resolved_migrations_folder_path)
    }


async def max_connections() -> int:
    """How many connections the database server accepts at once."""
    connection = await asyncpg.connect(**engine().config)
    try:
        return int(await connection.fetchval("SHOW max_connections"))
    finally:
        await connection.close()


async def migrate() -> None:
    """Apply every pending migration of every app, one process at a time."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    lock_connection = await asyncpg.connect(**engine().config)
    try:
        await lock_connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        # Piccolo prints progress to stdout; the CLI keeps stdout for results.
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            result = await run_forwards(app_name="all")
        if not result.success:
            log.error("migrations failed: %s", result.message)
            raise ConfigurationError(f"database migrations failed: {result.message}")
        log.debug("migrations: %s", printed.getvalue().strip())
    finally:
        # A lock connection that has gone away holds no lock to give up.
        with contextlib.suppress(*UNREACHABLE_ERRORS, OSError, asyncpg.InterfaceError):
            await lock_connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await lock_connection.close()
