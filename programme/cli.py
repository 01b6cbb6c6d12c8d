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

from analysis.rules import HORIZON_DAYS, quarter_range
from programme.platform.accounts.schemas import Principal
from programme.platform.errors import ApplicationError
from programme.platform.quarters import Quarter
from programme.platform.settings import ConfigurationError
from programme.platform.tables import Role

T = TypeVar("T")

CLI_ACTOR = Principal(id=None, username="cli", role="system")
"""Who the audit trail names for work done at the command line."""


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def run_with_database(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` after migrating, with the database pool open."""
    from programme.platform import database

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
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 256),
    help="Server processes sharing the one database.  [default: one per CPU core]",
)
def serve(host: str, port: int, workers: int | None) -> None:
    """Apply migrations and serve the API (on the embedded database unless DATABASE_URL).

    Stops cleanly, with the embedded database, on Ctrl-C or SIGTERM.
    """
    from programme import server
    from programme.platform.settings import get_settings

    settings = get_settings()
    settings.require_keys()  # before migrating: a server missing a key must not start at all
    server.serve(settings, host, port, workers)
    server.exit_now()


@cli.command()
def migrate() -> None:
    """Apply every pending database migration."""
    from programme.platform import database

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
    from programme.platform.accounts import services
    from programme.platform.accounts.schemas import AccountCreate

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
    account = run_with_database(lambda: services.create_account(data, CLI_ACTOR))
    click.echo(f"added {account.username} ({account.role}) id {account.id}")


@user.command("list")
def user_list() -> None:
    """Every account: username, role, agency, and whether it is active (audited)."""
    from programme.platform.accounts import services
    from programme.platform.paging import MAX_LIMIT, Paging

    async def work() -> list[Any]:
        found, offset = [], 0
        while True:
            page = await services.list_accounts(CLI_ACTOR, Paging(MAX_LIMIT, offset))
            found += page.items
            offset += MAX_LIMIT
            if offset >= page.total:
                return found

    for account in run_with_database(work):
        state = "active" if account.active else "deactivated"
        if account.active and account.reset_pending:
            state = "new password due"
        click.echo(f"{account.username}\t{account.role}\t{account.agency or '-'}\t{state}")


def _on_account(username: str, change: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``change`` on the named account; a refusal is one line and exit status 1."""
    from programme.platform.accounts import services

    async def work() -> T:
        return await change(await services.account_id_for(username))

    try:
        return run_with_database(work)
    except ApplicationError as error:
        raise _fail(_describe(error)) from None


@user.command("deactivate")
@click.argument("username")
def user_deactivate(username: str) -> None:
    """A leaver: their tokens and browser sessions stop at once (never the last admin)."""
    from programme.platform.accounts import services

    account = _on_account(username, lambda i: services.set_active(i, False, CLI_ACTOR))
    click.echo(f"deactivated {account.username}")


@user.command("reactivate")
@click.argument("username")
def user_reactivate(username: str) -> None:
    """They may sign in again (earlier tokens and sessions stay refused)."""
    from programme.platform.accounts import services

    account = _on_account(username, lambda i: services.set_active(i, True, CLI_ACTOR))
    click.echo(f"reactivated {account.username}")


@user.command("reset-password")
@click.argument("username")
def user_reset_password(username: str) -> None:
    """Print a temporary password; its owner must choose a new one at the next sign-in."""
    from programme.platform.accounts import services

    reset = _on_account(username, lambda i: services.reset_password(i, CLI_ACTOR))
    click.echo(f"temporary password for {reset.account.username}: {reset.temporary_password}")
    click.echo("(shown once; they must choose their own when they next sign in)", err=True)


@user.command("unlock")
@click.argument("username")
def user_unlock(username: str) -> None:
    """Lift the username's sign-in delay (addresses that guessed stay delayed)."""
    from programme.platform.accounts import services

    lockout = _on_account(username, lambda i: services.unlock(i, CLI_ACTOR))
    click.echo(f"unlocked {lockout.username}")


@cli.group("import")
def import_() -> None:
    """Import data from CSV files."""


DRY_RUN = click.option(
    "--dry-run", is_flag=True, help="Check the whole file and say what it would do; write nothing."
)


def _echo_rows(report: Any) -> None:
    """Every row's problem and every returned row, by line: field and rule, never the value."""
    for problem in report.warnings:
        click.echo(f"warning: line {problem.line}: {problem.field}: {problem.message}", err=True)
    for problem in report.errors:
        where = f"{problem.field}: " if problem.field else ""
        click.echo(
            f"error: line {problem.line}: {where}{problem.message} [{problem.code}]", err=True
        )
    for row in report.returned_rows:
        why = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in row.problems)
        click.echo(f"returned: line {row.line}: {', '.join(row.reasons)} ({why})")


@import_.command("referrals")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--skip-invalid", is_flag=True, help="Import the good rows even if some are bad.")
@click.option(
    "--create-agencies",
    is_flag=True,
    help="Add agencies the file names that are not yet known (else each is an error).",
)
@DRY_RUN
@click.option(
    "--override-reason",
    default=None,
    help="Why rows dated in a reported (locked) quarter are imported; kept in the audit trail.",
)
def import_referrals(
    file: str,
    skip_invalid: bool,
    create_agencies: bool,
    dry_run: bool,
    override_reason: str | None,
) -> None:
    """Import referrals from FILE (CSV, first line naming the columns)."""
    from pathlib import Path

    from programme.imports.rules import nothing_imported
    from programme.imports.services import import_referrals as run_import
    from programme.platform.clock import today
    from programme.platform.settings import get_settings

    content = Path(file).read_bytes()
    report = run_with_database(
        lambda: run_import(
            content,
            CLI_ACTOR,
            get_settings(),
            today(),
            skip_invalid=skip_invalid,
            override_reason=override_reason,
            create_agencies=create_agencies,
            dry_run=dry_run,
        )
    )
    _echo_rows(report)
    would = "would be " if report.checked_only else ""
    if report.agencies_created:
        click.echo(f"agencies {would}created: " + ", ".join(report.agencies_created))
    if report.checked_only:
        click.echo("checked only: nothing was written")
    click.echo(
        f"{'would import' if report.checked_only else 'imported'} {report.imported}, "
        f"returned {report.returned}, "
        f"already present {report.already_present}, refused {report.refused}, "
        f"warnings {len(report.warnings)}"
    )
    if report.older_than_backdate_limit:
        click.echo(
            f"{report.older_than_backdate_limit} rows were received more than "
            "INSPIRE_BACKDATE_DAYS ago (the API would refuse them)"
        )
    if nothing_imported(report, skip_invalid=skip_invalid):
        raise _fail(f"{report.refused} rows have errors: nothing was imported")


@import_.command("reoffending")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--skip-invalid", is_flag=True, help="Import the matched rows even if some are not.")
@click.option(
    "--extracted-on",
    default=None,
    help="The day the police took the extract (YYYY-MM-DD); default the latest offence "
    "date in the file. The reoffending analysis follows people no further than it.",
)
@DRY_RUN
def import_reoffending(
    file: str, skip_invalid: bool, extracted_on: str | None, dry_run: bool
) -> None:
    """Import police-recorded incidents from FILE (CSV)."""
    from datetime import date
    from pathlib import Path

    from programme.imports.rules import nothing_imported
    from programme.imports.services import import_reoffending as run_import
    from programme.platform.clock import today
    from programme.platform.crypto import KeyPurpose, purpose_key
    from programme.platform.settings import get_settings

    try:
        extract = date.fromisoformat(extracted_on) if extracted_on else None
    except ValueError:
        raise _fail(f"--extracted-on {extracted_on!r} is not a date like 2024-03-31") from None
    content = Path(file).read_bytes()
    secret = purpose_key(get_settings(), KeyPurpose.import_fingerprint)
    report = run_with_database(
        lambda: run_import(
            content,
            CLI_ACTOR,
            secret,
            today(),
            skip_invalid=skip_invalid,
            extracted_on=extract,
            dry_run=dry_run,
        )
    )
    _echo_rows(report)
    if report.checked_only:
        click.echo("checked only: nothing was written")
    click.echo(
        f"{'would import' if report.checked_only else 'imported'} {report.imported} "
        f"({report.after_referral} after a referral), "
        f"already present {report.already_present}, refused {report.refused}"
    )
    if report.extracted_on is not None:
        click.echo(f"extract taken on {report.extracted_on.isoformat()}")
    if nothing_imported(report, skip_invalid=skip_invalid):
        raise _fail(f"{report.refused} rows could not be matched or read: nothing was imported")


@import_.command("dictionary")
@click.argument("kind", type=click.Choice(["referrals", "reoffending"]))
@click.option("--format", "format_", type=click.Choice(["table", "json", "template"]),
              default="table", show_default=True,
              help="template: the first line of a CSV file to fill in.")  # fmt: skip
def import_dictionary(kind: str, format_: str) -> None:
    """The columns a KIND file may have: type, allowed values, which are required."""
    import msgspec

    from programme.imports import rules, services
    from programme.platform.settings import get_settings

    dictionary = run_with_database(
        lambda: services.dictionary(rules.ImportKind(kind), get_settings())
    )
    if format_ == "json":
        click.echo(msgspec.json.format(msgspec.json.encode(dictionary)).decode())
        return
    if format_ == "template":
        click.echo(rules.template_csv(dictionary), nl=False)
        return
    for column in dictionary.columns:
        needed = "required" if column.required else "optional"
        click.echo(f"{column.name} ({column.type}, {needed}): {column.meaning}")
        click.echo(f"    format: {column.format}")
        if column.allowed_values:
            click.echo("    allowed: " + ", ".join(column.allowed_values))
        if column.if_missing:
            click.echo(f"    if missing: {column.if_missing}")
        if column.returned_when:
            click.echo(f"    returned when: {column.returned_when}")
    for note in dictionary.notes:
        click.echo(f"- {note}")


@cli.group()
def report() -> None:
    """Contract-monitoring reports (aggregates only: no names, birth dates or phones)."""


FORMAT = click.Choice(["table", "csv", "json", "xlsx"])
BY = click.Choice(["agency", "local_authority"])


def _quarters(first: str, last: str) -> tuple[Quarter, Quarter]:
    try:
        start, end = quarter_range(first, last)
    except ApplicationError as exc:
        raise _fail("; ".join(f"--{e.field}: {e.message}" for e in exc.errors)) from None
    assert start is not None and end is not None  # both options are required
    return start, end


def _json(value: Any) -> str:
    import msgspec

    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def _write_workbook(download: Any, out: str | None) -> None:
    """An Excel workbook goes to a file, never to a terminal."""
    from analysis.formats import xlsx_download

    if not out:
        raise _fail("--format xlsx writes a workbook: give --out FILE.xlsx")
    with open(out, "wb") as handle:
        handle.write(xlsx_download(download))
    click.echo(f"wrote {out}", err=True)


def _threshold() -> int:
    from programme.platform.settings import get_settings

    return get_settings().suppress_below


OUT = click.option("--out", type=click.Path(dir_okay=False), help="File for --format xlsx.")


@report.command("quarterly")
@click.option("--from", "first", required=True, help='First quarter, e.g. "Q3 2021-22".')
@click.option("--to", "last", required=True, help='Last quarter, e.g. "Q2 2023-24".')
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--by", type=BY, help="Per agency or local authority.")
@OUT
def report_quarterly(first: str, last: str, fmt: str, by: str | None, out: str | None) -> None:
    """Referrals, engagement, starts and completions per UK financial quarter."""
    from analysis import services as reports
    from analysis.formats import csv_download, quarterly_download, to_table
    from programme.platform.clock import today

    start, end = _quarters(first, last)
    threshold = _threshold()
    if fmt == "xlsx" and not out:
        raise _fail("--format xlsx writes a workbook: give --out FILE.xlsx")

    async def work() -> reports.QuarterlyReport:
        found = await reports.quarterly(start, end, by)
        await reports.record_report_export(CLI_ACTOR, "quarterly", start, end, format=fmt, by=by)
        return reports.publish_quarterly(found, threshold)

    result = run_with_database(work)
    notes = [*reports.QUARTERLY_NOTES, *reports.suppression_note(threshold)]
    download = quarterly_download(result, start, end, today(), notes)
    columns = download.sheets[0].columns
    if fmt == "xlsx":
        _write_workbook(download, out)
    elif fmt == "csv":
        click.echo(csv_download(download), nl=False)
    elif fmt == "json":
        click.echo(
            _json(
                {
                    "rows": result.rows,
                    "completion_rate": result.completion_rate,
                    "engagement_rate": result.engagement_rate,
                    "notes": notes,
                    "by": by,
                    "group_rates": result.group_rates,
                    "suppression_threshold": threshold,
                }
            )
        )
    else:
        click.echo(to_table(result.rows, columns), nl=False)
        for name, rate in (
            ("completion", result.completion_rate),
            ("engagement", result.engagement_rate),
        ):
            if rate.rate is not None:
                click.echo(
                    f"{name} rate: {rate.numerator}/{rate.denominator} = {rate.rate:.0%} "
                    f"(95% CI {rate.ci_low:.0%} to {rate.ci_high:.0%})"
                )


@report.command("referral-quality")
@click.option("--from", "first", required=True, help='First quarter, e.g. "Q3 2021-22".')
@click.option("--to", "last", required=True, help='Last quarter, e.g. "Q2 2023-24".')
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--by", type=BY, default="agency", show_default=True)
@OUT
def report_quality(first: str, last: str, fmt: str, by: str, out: str | None) -> None:
    """Per agency and quarter: received, accepted, returned by reason, quality, engagement."""
    from analysis import services as reports
    from analysis.formats import csv_download, flatten_quality, quality_download, to_table
    from programme.platform.clock import today

    start, end = _quarters(first, last)
    threshold = _threshold()
    if fmt == "xlsx" and not out:
        raise _fail("--format xlsx writes a workbook: give --out FILE.xlsx")

    async def work() -> list[dict[str, Any]]:
        found = await reports.referral_quality(start, end, by)
        await reports.record_report_export(
            CLI_ACTOR, "referral-quality", start, end, format=fmt, by=by
        )
        return reports.publish_quality(found, threshold)

    rows = run_with_database(work)
    notes = [*reports.QUALITY_NOTES, *reports.suppression_note(threshold)]
    download = quality_download(rows, by, start, end, today(), notes)
    if fmt == "xlsx":
        _write_workbook(download, out)
    elif fmt == "json":
        click.echo(
            _json({"rows": rows, "notes": notes, "by": by, "suppression_threshold": threshold})
        )
    elif fmt == "csv":
        click.echo(csv_download(download), nl=False)
    else:
        click.echo(to_table(flatten_quality(rows), download.sheets[0].columns), nl=False)


@report.command("victim-feedback")
@click.option("--from", "first", required=True, help='First quarter, e.g. "Q3 2021-22".')
@click.option("--to", "last", required=True, help='Last quarter, e.g. "Q2 2023-24".')
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--by", type=BY, help="Per agency or local authority of the referral.")
@OUT
def report_feedback(first: str, last: str, fmt: str, by: str | None, out: str | None) -> None:
    """What victims and survivors say, per quarter and stage (aggregates only)."""
    from analysis import services as reports
    from analysis.formats import csv_download, feedback_download, to_table
    from programme.platform.clock import today

    start, end = _quarters(first, last)
    threshold = _threshold()
    if fmt == "xlsx" and not out:
        raise _fail("--format xlsx writes a workbook: give --out FILE.xlsx")

    async def work() -> Any:
        found = await reports.victim_feedback_report(start, end, threshold, by)
        await reports.record_report_export(
            CLI_ACTOR, "victim-feedback", start, end, format=fmt, by=by
        )
        return found

    result = run_with_database(work)
    download = feedback_download(result, start, end, today())
    if fmt == "xlsx":
        _write_workbook(download, out)
    elif fmt == "json":
        click.echo(_json(result))
    elif fmt == "csv":
        click.echo(csv_download(download), nl=False)
    else:
        sheet = download.sheets[0]
        click.echo(to_table(sheet.rows, sheet.columns), nl=False)


@report.command("pack")
@click.option("--quarter", required=True, help='The quarter, e.g. "Q2 2023-24".')
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The file: .pdf to print, or .html for the same pack as a web page.",
)
def report_pack(quarter: str, out: str) -> None:
    """The quarterly pack for a contract meeting, as a PDF or an HTML page (aggregates only)."""
    from analysis import pack
    from analysis import services as reports
    from analysis.rules import pack_quarter
    from programme.platform.clock import today

    fmt = out.rsplit(".", 1)[-1].lower() if "." in out else ""
    if fmt not in pack.FORMATS:
        raise _fail("--out: give a file ending .pdf or .html")
    try:
        chosen = pack_quarter(quarter, today())
    except ApplicationError as exc:
        raise _fail("; ".join(f"--{e.field}: {e.message}" for e in exc.errors)) from None
    threshold = _threshold()

    async def work() -> bytes:
        _, body = await pack.document(chosen, fmt, today(), threshold)
        await reports.record_report_export(CLI_ACTOR, "pack", chosen, chosen, format=fmt)
        return body

    body = run_with_database(work)
    with open(out, "wb") as handle:
        handle.write(body)
    click.echo(f"wrote {out}", err=True)


@cli.group()
def analyse() -> None:
    """Outcome analyses."""


@analyse.command("reoffending")
@click.option("--horizon-days", default=HORIZON_DAYS, show_default=True, type=int)
@click.option(
    "--as-of",
    default=None,
    help="Data cut-off date (YYYY-MM-DD); default the day the latest police extract was taken.",
)
@click.option("--group-by", default=None, help="e.g. risk_level, gender, engaged, completed.")
@click.option("--covariates", default=None, help="Comma list, e.g. age_at_referral,risk_level.")
@click.option("--landmark-days", default=None, type=int)
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table")
@click.option(
    "--plot",
    "plot_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also write the Kaplan-Meier plot (.png or .svg).",
)
@click.option(
    "--naive-plot",
    is_flag=True,
    help="Grouped by engaged/completed, plot the naive (biased) curves from referral "
    "instead of the landmark ones.",
)
def analyse_reoffending(
    horizon_days: int,
    as_of: str | None,
    group_by: str | None,
    covariates: str | None,
    landmark_days: int | None,
    fmt: str,
    plot_file: str | None,
    naive_plot: bool,
) -> None:
    """Survival analysis of reoffending after referral."""
    from datetime import date
    from pathlib import Path

    from analysis import plots, rules
    from analysis import services as reoffending
    from programme.platform.clock import today
    from programme.platform.settings import get_settings

    try:
        cut_off = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise _fail(f"--as-of {as_of!r} is not a date like 2024-03-31") from None
    if plot_file and Path(plot_file).suffix.lower() not in (".png", ".svg"):
        raise _fail("--plot must name a .png or .svg file")
    request = rules.analysis_request(
        horizon_days, cut_off, group_by, covariates, landmark_days, today()
    )

    threshold = get_settings().suppress_below

    async def work() -> Any:
        result = await reoffending.analyse(request, today(), threshold)
        await reoffending.record_analysis_export(CLI_ACTOR, group_by)
        image = None
        if plot_file:
            image = await plots.reoffending_plot(
                request, today(), Path(plot_file).suffix[1:].lower(), threshold, naive_plot
            )
        return result, image

    result, image = run_with_database(work)
    if image is not None and plot_file:
        Path(plot_file).write_bytes(image)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if fmt == "json":
        click.echo(_json(result))
        return
    click.echo(
        f"n={result.n} events={result.events} excluded={result.excluded} "
        f"horizon={result.horizon_days} days, data to {result.as_of}"
    )
    _population("groups and log-rank", result.population)
    for g in result.groups:
        click.echo(f"  {g.group}: n={g.n} reoffended={g.events} {_estimates(g)}")
    if result.logrank:
        click.echo(f"log-rank: chi2={result.logrank.statistic:.2f} p={result.logrank.p:.4f}")
    if result.cox:
        _population("Cox", result.cox.population)
        for t in result.cox.covariates:
            click.echo(
                f"  Cox {t.name}: HR {t.hazard_ratio:.2f} "
                f"(95% CI {t.ci_low:.2f}-{t.ci_high:.2f}) p={t.p:.4f}"
            )
    if result.time_varying:
        if result.time_varying.population:
            _population("time-varying Cox", result.time_varying.population)
        for t in result.time_varying.covariates:
            click.echo(
                f"  time-varying {t.name}: HR {t.hazard_ratio:.2f} "
                f"(95% CI {t.ci_low:.2f}-{t.ci_high:.2f}) p={t.p:.4f}"
            )
        if result.time_varying.covariates:
            click.echo(f"  standard errors: {result.time_varying.standard_errors}")
        landmark = result.time_varying.landmark
        if landmark:
            _population(f"landmark at day {landmark.landmark_days}", landmark.population)
            click.echo(f"  {landmark.conditional}")
            for g in landmark.groups:
                click.echo(f"  landmark {g.group}: n={g.n} reoffended={g.events} {_estimates(g)}")
            if landmark.logrank:
                click.echo(
                    f"  landmark log-rank: chi2={landmark.logrank.statistic:.2f} "
                    f"p={landmark.logrank.p:.4f}"
                )
            if landmark.cox:
                _population("landmark Cox", landmark.cox.population)
                for t in landmark.cox.covariates:
                    click.echo(
                        f"  landmark {t.name}: HR {t.hazard_ratio:.2f} "
                        f"(95% CI {t.ci_low:.2f}-{t.ci_high:.2f}) p={t.p:.4f}"
                    )
    if result.adjusted:
        _adjusted(result.adjusted)
    crude = result.before_after
    ratio = (
        "ratio withheld or undefined"
        if crude.rate_ratio is None
        else f"ratio after/before {crude.rate_ratio:.2f} (95% CI {crude.rate_ratio_ci_low:.2f}-"
        + (
            "no upper bound"
            if crude.rate_ratio_ci_high is None
            else f"{crude.rate_ratio_ci_high:.2f}"
        )
        + ")"
    )
    click.echo(
        f"before/after ({crude.window_days} days each, n={crude.n}): incidents before "
        f"{crude.incidents_before}, after {crude.incidents_after}; {ratio}"
    )
    for note in result.notes:
        click.echo(f"note: {note}")


def _estimates(group: Any) -> str:
    """A group's survival, CI and RMST, or why they are not shown."""
    if group.survival is None:
        return "(estimates withheld: they would reveal a count under the threshold)"
    if not group.interpretable:
        return "(NOT INTERPRETABLE: immortal time only, see the notes)"
    interval = (
        "no reoffence: no CI"
        if group.ci_low is None
        else f"95% CI {group.ci_low:.1%}-{group.ci_high:.1%}"
    )
    return (
        f"not reoffended at horizon {group.survival:.1%} ({interval}), RMST {group.rmst:.1f} days"
    )


def _adjusted(adjusted: Any) -> None:
    """The adjusted comparison (IPTW): its people, hazard ratios, weights, balance, E-value."""
    _population(
        f"adjusted (IPTW) at day {adjusted.landmark_days}, next {adjusted.follow_up_days} days",
        adjusted.population,
    )
    lacking = ", ".join(f"{d.covariate} {d.count}" for d in adjusted.not_recorded) or "none"
    click.echo(f"  covariates: {', '.join(adjusted.covariates)}; not recorded (kept): {lacking}")
    for label, t in (
        ("adjusted", adjusted.hazard_ratio),
        ("unadjusted, same people", adjusted.unadjusted_hazard_ratio),
    ):
        click.echo(
            f"  {label} {t.name}: HR {t.hazard_ratio:.2f} "
            f"(95% CI {t.ci_low:.2f}-{t.ci_high:.2f}) p={t.p:.4f}"
        )
    click.echo(f"  standard errors: {adjusted.standard_errors}")
    for g in adjusted.groups:
        survival = (
            "weighted survival withheld (a count under the threshold)"
            if g.weighted_survival is None
            else f"weighted share not reoffended over the {adjusted.follow_up_days} days "
            f"{g.weighted_survival:.1%}"
        )
        click.echo(f"  adjusted {g.group}: n={g.n} reoffended={g.events} {survival}")
    w = adjusted.weights
    effective = "withheld" if w.effective_n is None else f"{w.effective_n:.0f}"
    click.echo(
        f"  weights: truncated to {w.lower:.2f}-{w.upper:.2f} (raised {w.truncated_low}, "
        f"lowered {w.truncated_high}); effective n {effective}. {w.method}"
    )
    click.echo("  balance (standardised mean difference, flagged * when |SMD| >= 0.1):")
    width = max(len(b.covariate) for b in adjusted.balance)

    def smd(value: float | None, flagged: bool) -> str:
        return "     n/a" if value is None else f"{value:+8.3f}{'*' if flagged else ' '}"

    click.echo(f"    {'covariate'.ljust(width)}    before     after")
    for b in adjusted.balance:
        click.echo(
            f"    {b.covariate.ljust(width)}  {smd(b.smd_before, b.imbalanced_before)}"
            f"  {smd(b.smd_after, b.imbalanced_after)}"
        )
    e = adjusted.e_value
    click.echo(f"  E-value: {e.estimate:.2f} (CI limit nearest 1: {e.ci_limit:.2f}). {e.meaning}")
    click.echo(f"  can show: {adjusted.can_show}")
    click.echo(f"  cannot show: {adjusted.cannot_show}")


def _population(model: str, population: Any) -> None:
    """Whom one model is on, and who was left out and why, before its figures."""
    dropped = "; ".join(f"{d.reason}: {d.count}" for d in population.dropped) or "none"
    click.echo(
        f"{model}: n={population.n} events={population.events} dropped: {dropped}. "
        f"{population.description}"
    )


def _size(count: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000  # type: ignore[assignment]
    raise AssertionError  # pragma: no cover - the loop always returns


@cli.command()
@click.argument("file")
def backup(file: str) -> None:
    """Write a backup of the whole database to FILE (PostgreSQL's own dump, without the keys)."""
    from pathlib import Path

    from programme.platform.backups import services as backups
    from programme.platform.settings import get_settings

    made = asyncio.run(backups.backup(Path(file), get_settings(), CLI_ACTOR))
    click.echo(f"backup written to {made.path} ({_size(made.size_bytes)})")
    if not made.private:
        click.echo(
            f"warning: others can read {made.path} on this file system: move it somewhere only "
            f"you can read",
            err=True,
        )
    click.echo(
        "It does not hold the keys. Keep these as safely as the backup, and apart from it: "
        + ", ".join(made.keys_to_keep)
        + ". Without the encryption key no victim's details can be read; without the "
        "pseudonym key every pseudonym and import fingerprint changes."
    )


@cli.command()
@click.argument("file")
@click.option(
    "--replace", is_flag=True, help="Replace a database that holds records (they are lost)."
)
@click.option(
    "--ignore-key-check",
    is_flag=True,
    help="Restore although the keys here are not the backup's (victims' details stay unreadable).",
)
def restore(file: str, replace: bool, ignore_key_check: bool) -> None:
    """Replace the database with the backup in FILE, then apply migrations."""
    from pathlib import Path

    from programme.platform.backups import services as backups
    from programme.platform.settings import get_settings

    done = asyncio.run(
        backups.restore(
            Path(file),
            get_settings(),
            CLI_ACTOR,
            replace=replace,
            ignore_key_check=ignore_key_check,
        )
    )
    for problem in done.key_problems:
        click.echo(f"warning: {problem}: restored anyway, as --ignore-key-check asked", err=True)
    replaced = (
        f", replacing the records it held (in {len(done.replaced_tables)} tables)"
        if done.replaced_tables
        else ""
    )
    applied = done.migrations_applied
    forward = (
        "it needed no migration"
        if not applied
        else f"{applied} migration{'s' if applied > 1 else ''} applied to bring it forward"
    )
    click.echo(f"restored the backup made {done.made_at:%Y-%m-%d %H:%M} UTC{replaced}; {forward}")


@cli.command()
@click.option("--seed", default=2021, show_default=True, type=int)
@click.option(
    "--referrals", "count", default=900, show_default=True, type=click.IntRange(50, 20000)
)
def demo(seed: int, count: int) -> None:
    """Fill an EMPTY database with realistic synthetic data (refuses if it holds records)."""
    from programme import demo as demo_data
    from programme.platform.clock import today
    from programme.platform.settings import get_settings

    summary = run_with_database(lambda: demo_data.fill(get_settings(), today(), seed, count))
    click.echo(
        f"demo data: {summary.referrals} referrals and {summary.returned} returned referrals, "
        f"{summary.groups} groups with {summary.registers} registers, {summary.victims} "
        f"victims with {summary.feedback} feedback, {summary.incidents} police incidents"
    )
    for username, password in summary.passwords.items():
        click.echo(f"account {username} password {password}")
    if summary.passwords:
        click.echo("(passwords are shown once; add your own accounts with 'inspire user add')")


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="inspire", standalone_mode=True)
    except ConfigurationError as exc:
        click.echo(f"inspire: {exc}", err=True)
        sys.exit(2)
    except ApplicationError as exc:
        click.echo(f"inspire: {_describe(exc)}", err=True)
        sys.exit(1)
    except ValueError as exc:  # AnalysisError and other plain-worded input problems
        click.echo(f"inspire: {exc}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        click.echo(f"inspire: failed ({type(exc).__name__}); nothing was changed", err=True)
        sys.exit(1)
