"""Where the database is, and keeping its schema current.

With ``DATABASE_URL`` set the service uses that server. Without it, an embedded
PostgreSQL (the ``pgserver`` wheel ships the server binaries) runs from the data
directory, so a new user needs nothing installed. Every process that asks for
the embedded server shares the one running instance; pgserver stops it when
the last of them exits.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from programme.platform.settings import ConfigurationError, get_settings

log = logging.getLogger(__name__)

_embedded: Any = None

# Any number will do as long as no other code in the database uses it.
_MIGRATION_LOCK = 7_046_530_021

# The failures that mean "the database cannot be reached right now", as opposed
# to a bad query: they become 503 answers and a retry, not 500s.
UNREACHABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


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


def database_url() -> str:
    """The connection string of the database this process should use."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
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
        with contextlib.suppress(*UNREACHABLE_ERRORS):
            await lock_connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await lock_connection.close()
