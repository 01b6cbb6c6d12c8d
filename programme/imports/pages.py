"""Imports in the browser, for admins: each file's columns, a template, and upload, check, confirm.

A page decides nothing itself. The columns page shows ``services.dictionary`` (the
specs the import checks by, as ``GET /imports/{kind}/dictionary`` does). An upload
is kept by ``services.upload`` and checked by the import itself with nothing
written (``dry_run``); the person sees every row's problem, what would be
imported, returned and warned, and only then confirms, which runs the same
all-or-nothing import on the same bytes and refuses if it would now do anything
other than what was shown. Files of more than ``services.PROGRESS_ABOVE_ROWS``
lines are checked and imported in the background: the job's page shows how far
it has gone, refreshing itself (htmx polls it; without JavaScript the page
reloads itself).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Template

from programme.imports import rules, services
from programme.imports.rules import ImportKind
from programme.imports.schemas import ImportReport
from programme.imports.services import ImportJob, JobStage
from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.errors import ApplicationError, FieldError
from programme.platform.settings import Settings
from programme.platform.tables import Role
from programme.platform.threads import off_loop
from programme.platform.web import browser

TEMPLATES = Path(__file__).resolve().parent / "templates"

IMPORTS = "/data-imports"
CHECKS = IMPORTS + "/checks"

ADMINS = access.requires(Role.admin)

SHOWN_ROWS = 1000
"""Rows of each list shown on the page; every one is in the problems download."""

KIND_WORDS = {
    ImportKind.referrals: "Referrals",
    ImportKind.reoffending: "Police-recorded incidents (reoffending)",
}

_RUNNING: set[asyncio.Task[None]] = set()
"""Background checks and imports: kept here so they are not collected while they run."""


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


@get(IMPORTS, guards=[ADMINS], opt={browser.NAV: "Imports", "nav_order": 80})
async def imports_page(request: Request[Any, Any, Any]) -> Template:
    """Upload a file to check; each kind's columns and template."""
    return _upload_page(request)


def _upload_page(
    request: Request[Any, Any, Any],
    errors: list[FieldError] | None = None,
    entered: dict[str, str] | None = None,
) -> Template:
    return browser.page(
        request,
        "imports/imports.html",
        status_code=422 if errors else 200,
        errors=errors or [],
        title="Import a file",
        kinds=KIND_WORDS,
        entered=entered or {},
    )


@post(IMPORTS, guards=[ADMINS], status_code=303, request_max_body_size=rules.MAX_UPLOAD_BYTES)
async def upload(
    request: Request[Any, Any, Any], actor: access.SignedIn, state: State
) -> Template | Redirect:
    """Keep the file and check it, writing nothing; then show the check."""
    form = await request.form()
    entered = {k: v for k, v in form.items() if isinstance(v, str) and k != "_csrf_token"}
    kind_text = entered.get("kind", "")
    file = form.get("file")
    problems = []
    if kind_text not in {k.value for k in ImportKind}:
        problems.append(FieldError("required", "kind", "Choose what the file holds."))
    content = await file.read() if isinstance(file, UploadFile) else b""
    if not content:
        problems.append(FieldError("required", "file", "Choose a CSV file to upload."))
    if problems:
        return _upload_page(request, problems, entered)
    settings: Settings = state.settings
    kind = ImportKind(kind_text)
    job = await services.upload(
        content,
        kind,
        actor,
        settings,
        skip_invalid=entered.get("skip_invalid") == "yes",
        create_agencies=kind is ImportKind.referrals and entered.get("create_agencies") == "yes",
    )
    checking = services.check(job, actor, settings, today())
    if job.background:
        _in_background(checking)
    else:
        await checking
    return Redirect(f"{CHECKS}/{job.token}", status_code=303)


@get(IMPORTS + "/columns/{kind:str}", guards=[ADMINS])
async def columns_page(
    request: Request[Any, Any, Any], kind: FromPath[ImportKind], state: State
) -> Template:
    """The file's columns: type, format, allowed values, required, what happens without them."""
    dictionary = await services.dictionary(kind, state.settings)
    return browser.page(
        request,
        "imports/columns.html",
        title=f"{KIND_WORDS[kind]}: the file's columns",
        kind=kind,
        kind_words=KIND_WORDS[kind],
        dictionary=dictionary,
    )


@get(IMPORTS + "/template/{kind:str}", guards=[ADMINS])
async def template_download(kind: FromPath[ImportKind], state: State) -> Response[str]:
    """The template to fill in, as ``GET /imports/{kind}/template``."""
    dictionary = await services.dictionary(kind, state.settings)
    return Response(
        rules.template_csv(dictionary),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{kind.value}-template.csv"'},
    )


def _job_page(
    request: Request[Any, Any, Any],
    job: ImportJob,
    *,
    errors: list[FieldError] | None = None,
    status_code: int = 200,
) -> Template:
    report = job.result if job.stage is JobStage.imported else job.check
    return browser.page(
        request,
        "imports/job.html",
        status_code=status_code,
        errors=errors or [],
        title=_job_title(job),
        job=job,
        kind_words=KIND_WORDS[job.kind],
        report=report,
        confirmable=services.confirmable(job),
        shown=SHOWN_ROWS,
        polling=job.running,
        path=f"{CHECKS}/{job.token}",
        refresh_seconds=2 if job.running else None,
    )


def _job_title(job: ImportJob) -> str:
    return {
        JobStage.checking: "Checking the file",
        JobStage.checked: "The file checked: nothing written yet",
        JobStage.importing: "Importing the file",
        JobStage.imported: "The file imported",
        JobStage.failed: "The file could not be taken",
    }[job.stage]


@get(CHECKS + "/{token:str}", guards=[ADMINS])
async def job_page(
    request: Request[Any, Any, Any], token: FromPath[str], actor: access.SignedIn, state: State
) -> Template:
    """How far the check or import has gone; then what the file does, row by row."""
    return _job_page(request, await services.job(token, actor, state.settings))


@get(CHECKS + "/{token:str}/problems.csv", guards=[ADMINS])
async def problems_download(
    token: FromPath[str], actor: access.SignedIn, state: State
) -> Response[str]:
    """Every row's problem, returned row and warning, by line: fields and rules, no values."""
    job = await services.job(token, actor, state.settings)
    report = job.result if job.stage is JobStage.imported else job.check
    return Response(
        await off_loop(_problems_csv, report),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{job.kind.value}-problems.csv"'},
    )


def _problems_csv(report: ImportReport | None) -> str:
    """A file of 200,000 rows may have as many problems: written off the event loop."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["line", "outcome", "column", "code", "problem"])
    if report is not None:
        for e in report.errors:
            writer.writerow([e.line, "error", e.field, e.code, e.message])
        for r in report.returned_rows:
            for p in r.problems:
                writer.writerow([r.line, "returned", p.field, p.code, p.message])
        for w in report.warnings:
            writer.writerow([w.line, "warning", w.field, w.code, w.message])
    return out.getvalue()


@post(CHECKS + "/{token:str}/confirm", guards=[ADMINS], status_code=303)
async def confirm(
    request: Request[Any, Any, Any], token: FromPath[str], actor: access.SignedIn, state: State
) -> Template | Redirect:
    """Import what the check showed, and nothing else (``services.confirm``)."""
    settings: Settings = state.settings
    job = await services.job(token, actor, settings)
    form = await request.form()
    reason = str(form.get("override_reason") or "").strip()[:500] or None
    try:
        await services.start_import(job, settings)
    except ApplicationError as error:
        return _job_page(
            request, job, errors=[FieldError("conflict", "", error.message)], status_code=409
        )
    importing = services.confirm(job, actor, settings, today(), reason)
    if job.background:
        _in_background(importing)
    else:
        await importing
    return Redirect(f"{CHECKS}/{job.token}", status_code=303)


@post(CHECKS + "/{token:str}/discard", guards=[ADMINS], status_code=303)
async def discard(
    request: Request[Any, Any, Any], token: FromPath[str], actor: access.SignedIn, state: State
) -> Template | Redirect:
    """Forget the upload: nothing of it is imported or kept."""
    job = await services.job(token, actor, state.settings)
    try:
        await services.discard(job, state.settings)
    except ApplicationError as error:
        return _job_page(
            request, job, errors=[FieldError("conflict", "", error.message)], status_code=409
        )
    return Redirect(IMPORTS, status_code=303)


PAGES = [
    imports_page,
    upload,
    columns_page,
    template_download,
    job_page,
    problems_download,
    confirm,
    discard,
]
