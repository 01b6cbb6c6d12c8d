"""The admins' audit trail page: search by who, what record, when and action, paged, and a
CSV download of what the search found (itself audited).

The search is ``GET /audit``'s service; its filters go in the address as the API's do
(usernames, record types and ids, days: never a person's name or date of birth).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from programme.platform.accounts import access
from programme.platform.audit import services
from programme.platform.clock import today
from programme.platform.errors import FieldError, InvalidInput
from programme.platform.http_inputs import Offset
from programme.platform.paging import Paging
from programme.platform.tables import AuditAction, RecordType, Role
from programme.platform.web import browser

TEMPLATES = Path(__file__).resolve().parent / "templates"

ADMINS = access.requires(Role.admin)
AUDIT = "/admin/audit"
PAGE_SIZE = 50
FILTERS = ("username", "record_type", "record_id", "action", "from", "to")


def _filters(given: dict[str, str]) -> tuple[services.AuditFilters, list[FieldError]]:
    """The search form's boxes as the service's filters, every problem at once."""
    problems = []
    days: dict[str, date | None] = {"from": None, "to": None}
    for name in ("from", "to"):
        text = given[name]
        if text:
            try:
                days[name] = date.fromisoformat(text)
            except ValueError:
                problems.append(
                    FieldError("invalid", name, "Enter a date as YYYY-MM-DD, such as 2026-11-27.")
                )
    record_type = given["record_type"]
    if record_type and record_type not in {r.value for r in RecordType}:
        problems.append(FieldError("invalid", "record_type", "Choose a kind of record."))
    action = given["action"]
    if action and action not in {a.value for a in AuditAction}:
        problems.append(FieldError("invalid", "action", "Choose an action."))
    for name in ("username", "record_id"):
        if len(given[name]) > 100:
            problems.append(FieldError("too_long", name, "Use at most 100 characters."))
    filters = services.AuditFilters(
        record_type=RecordType(record_type) if record_type and not problems else None,
        record_id=given["record_id"] or None,
        username=given["username"].lower() or None,
        action=AuditAction(action) if action and not problems else None,
        occurred_from=days["from"],
        occurred_to=days["to"],
    )
    return filters, problems


def _given(
    username: str | None,
    record_type: str | None,
    record_id: str | None,
    action: str | None,
    from_: str | None,
    to: str | None,
) -> dict[str, str]:
    values = (username, record_type, record_id, action, from_, to)
    return {name: (value or "").strip() for name, value in zip(FILTERS, values, strict=True)}


@get(AUDIT, guards=[ADMINS], opt={browser.NAV: "Audit trail", "nav_order": 75})
async def audit_page(
    request: Request[Any, Any, Any],
    username: FromQuery[str | None] = None,
    record_type: FromQuery[str | None] = None,
    record_id: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    from_: Annotated[str | None, QueryParameter(name="from")] = None,
    to: FromQuery[str | None] = None,
    offset: Offset = 0,
) -> Template:
    """Who did what to which record, and when, newest first, 50 a page."""
    given = _given(username, record_type, record_id, action, from_, to)
    filters, problems = _filters(given)
    found = None
    if not problems:
        try:
            found = await services.search(filters, Paging(PAGE_SIZE, offset))
        except InvalidInput as error:
            problems = list(error.errors)
    query = urlencode({k: v for k, v in given.items() if v})
    return browser.page(
        request,
        "audit/audit.html",
        status_code=422 if problems else 200,
        title="Audit trail",
        errors=problems,
        given=given,
        found=found,
        query=query,
        page_size=PAGE_SIZE,
        record_types=[r.value for r in RecordType],
        actions=[a.value for a in AuditAction],
    )


@get(AUDIT + "/download", guards=[ADMINS])
async def audit_download(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    username: FromQuery[str | None] = None,
    record_type: FromQuery[str | None] = None,
    record_id: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    from_: Annotated[str | None, QueryParameter(name="from")] = None,
    to: FromQuery[str | None] = None,
) -> Response[str] | Template:
    """What the search finds as CSV (newest first, at most 100,000 rows); audited."""
    given = _given(username, record_type, record_id, action, from_, to)
    filters, problems = _filters(given)
    if problems:
        return browser.page(
            request,
            "audit/audit.html",
            status_code=422,
            title="Audit trail",
            errors=problems,
            given=given,
            found=None,
            query="",
            page_size=PAGE_SIZE,
            record_types=[r.value for r in RecordType],
            actions=[a.value for a in AuditAction],
        )
    text, _ = await services.export_csv(filters, actor)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-trail-{today().isoformat()}.csv"'
        },
    )


PAGES = [audit_page, audit_download]
