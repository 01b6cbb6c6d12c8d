"""The ``inspire`` command: serve, migrate, and manage accounts.

Errors are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from programme.core.errors import ApplicationError
from programme.core.settings import ConfigurationError
from programme.tables import Role

T = TypeVar("T")


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def run_with_database(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` after migrating, with the database pool open."""
    from programme.core import database

    async def wrapped() -> T:
        await database.migrate()
        db = database.engine()
        await db.start_connection_pool(min_size=0, max_size=2)
        try:
            return await work()
        finally:
            await db.close_connection_pool()

    return asyncio.run(wrapped())


def _describe(error: ApplicationError) -> str:
    if not error.errors:
        return error.message
    return "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in error.errors)


@click.group()
def cli() -> None:
    """Referral and outcome tracker for domestic-abuse perpetrator programmes."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Apply migrations and serve the API (on the embedded database unless DATABASE_URL)."""
    import uvicorn

    from programme.app import create_app
    from programme.core import database
    from programme.core.settings import get_settings

    settings = get_settings()
    settings.token_secret()  # refuse to start without a key before doing anything else
    asyncio.run(database.migrate())
    app = create_app(settings)
    where = "embedded database" if settings.uses_embedded_database else "DATABASE_URL"
    click.echo(f"inspire: serving on http://{host}:{port} ({where}); API docs at /schema", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@cli.command()
def migrate() -> None:
    """Apply every pending database migration."""
    from programme.core import database

    asyncio.run(database.migrate())
    click.echo("inspire: database is up to date", err=True)


@cli.group()
def user() -> None:
    """Manage sign-in accounts."""


@user.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--agency", default=None, help="The referrer's agency; created if new.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(username: str, role: str, agency: str | None, password_stdin: bool) -> None:
    """Add an account. Referrers must name their agency."""
    from programme.accounts import services
    from programme.accounts.schemas import AccountCreate, Principal

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise _fail("the two passwords differ")
    else:
        raise _fail("give the password on standard input with --password-stdin")
    if role == Role.referrer.value and not agency:
        raise _fail("a referrer must belong to an agency: add --agency NAME")
    data = AccountCreate(username=username, password=password, role=Role(role), agency=agency)
    cli_actor = Principal(id=None, username="cli", role="system")
    account = run_with_database(lambda: services.create_account(data, cli_actor))
    click.echo(f"added {account.username} ({account.role}) id {account.id}")


@cli.group("import")
def import_() -> None:
    """Import data from CSV files."""


@import_.command("referrals")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--skip-invalid", is_flag=True, help="Import the good rows even if some are bad.")
def import_referrals(file: str, skip_invalid: bool) -> None:
    """Import referrals from FILE (CSV, first line naming the columns)."""
    from pathlib import Path

    from programme.accounts.schemas import Principal
    from programme.core.clock import today
    from programme.core.settings import get_settings
    from referrals.import_service import import_referrals as run_import

    content = Path(file).read_bytes()
    actor = Principal(id=None, username="cli", role="system")
    report = run_with_database(
        lambda: run_import(content, actor, get_settings(), today(), skip_invalid=skip_invalid)
    )
    for problem in report.warnings:
        click.echo(f"warning: line {problem.line}: {problem.field}: {problem.message}", err=True)
    for problem in report.errors:
        where = f"{problem.field}: " if problem.field else ""
        click.echo(
            f"error: line {problem.line}: {where}{problem.message} [{problem.code}]", err=True
        )
    if report.agencies_created:
        click.echo("agencies created: " + ", ".join(report.agencies_created))
    click.echo(
        f"imported {report.imported}, returned {report.returned}, "
        f"already present {report.already_present}, refused {report.refused}, "
        f"warnings {len(report.warnings)}"
    )
    if report.errors and not skip_invalid:
        raise _fail(f"{report.refused} rows have errors: nothing was imported")


@import_.command("reoffending")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--skip-invalid", is_flag=True, help="Import the matched rows even if some are not.")
def import_reoffending(file: str, skip_invalid: bool) -> None:
    """Import police-recorded incidents from FILE (CSV)."""
    from pathlib import Path

    from outcomes.reoffending import import_reoffending as run_import
    from programme.accounts.schemas import Principal
    from programme.core.clock import today
    from programme.core.settings import get_settings

    content = Path(file).read_bytes()
    actor = Principal(id=None, username="cli", role="system")
    secret = get_settings().token_secret()
    report = run_with_database(
        lambda: run_import(content, actor, secret, today(), skip_invalid=skip_invalid)
    )
    for problem in report.errors:
        where = f"{problem.field}: " if problem.field else ""
        click.echo(f"error: line {problem.line}: {where}{problem.message}", err=True)
    click.echo(
        f"imported {report.imported} ({report.after_referral} after a referral), "
        f"already present {report.already_present}, refused {report.refused}"
    )
    if report.errors and not skip_invalid:
        raise _fail(f"{report.refused} rows could not be matched or read: nothing was imported")


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="inspire", standalone_mode=True)
    except ConfigurationError as exc:
        click.echo(f"inspire: {exc}", err=True)
        sys.exit(2)
    except ApplicationError as exc:
        click.echo(f"inspire: {_describe(exc)}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        click.echo(f"inspire: failed ({type(exc).__name__}); nothing was changed", err=True)
        sys.exit(1)
