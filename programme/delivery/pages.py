"""The facilitators' web pages: caseload, a referral, groups, sessions, the register.

Each page calls the same service its API route calls (``referrals.services`` for
referrals, this domain's services for groups and registers), so every rule is
the services' and none is written again here. A form is a plain POST answered
by a redirect to the page it changed, or by the form again with every problem
the service found (its 409s and 422s) in the error summary. Nothing personal is
put in an address: a search by name is a POST, and pages address referrals,
groups and sessions by id only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, NamedTuple
from uuid import UUID

import msgspec
from jinja2 import Template as JinjaTemplate
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from markupsafe import Markup

from programme.delivery import rules, schemas, services
from programme.platform.accounts import access
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.errors import ApplicationError, FieldError, InvalidInput, NotFound
from programme.platform.paging import MAX_LIMIT, MAX_OFFSET, Paging
from programme.platform.settings import Settings
from programme.platform.tables import Role
from programme.platform.web import browser
from referrals import services as referrals
from referrals.rules import Status, allowed_next, reason_problems
from referrals.schemas import EventCreate, ReferralNamedView, ReferralSearch, ReferralView
from referrals.services import CaseloadReferral, OutcomesHooks

TEMPLATES = Path(__file__).resolve().parent / "templates"

Page = Template | Redirect

STAFF = access.requires(Role.facilitator, Role.admin)

CASELOAD = "/caseload"
GROUPS = "/delivery/groups"

MAX_FIELD_LENGTH = 2048
"""Longer form values are cut: the services refuse anything near it anyway."""

OFFERED_STEPS = (
    Status.contacted,
    Status.engaged,
    Status.disengaged,
    Status.withdrawn,
    Status.closed,
)
"""The steps a facilitator records by hand; started and completed follow from the register."""

STEP_HINTS = {
    Status.contacted: "First contact made with the person.",
    Status.engaged: "They have agreed to take part and are ready for a group place.",
    Status.disengaged: "They have stopped taking part.",
    Status.withdrawn: "They withdrew their consent: nothing more will be recorded.",
    Status.closed: "The referral is closed for another reason.",
}

MARKS = (rules.Mark.attended, rules.Mark.late, rules.Mark.excused, rules.Mark.absent)
MARK_VALUES = frozenset(mark.value for mark in MARKS)
MARK_LABELS = {
    rules.Mark.attended: "Attended",
    rules.Mark.late: "Late",
    rules.Mark.excused: "Excused",
    rules.Mark.absent: "Absent",
}

MARK_CHOICES = tuple(
    ("" if n == 1 else f"-{n}", mark.value, MARK_LABELS[mark]) for n, mark in enumerate(MARKS, 1)
)
"""Each radio of a register's row: its id's ending (GOV.UK's: none for the first), value, label."""

STATUS_TAG_COLOURS = {
    "accepted": "govuk-tag--blue",
    "contacted": "govuk-tag--light-blue",
    "engaged": "govuk-tag--turquoise",
    "started": "govuk-tag--green",
    "completed": "govuk-tag--green",
    "disengaged": "govuk-tag--orange",
    "withdrawn": "govuk-tag--grey",
    "closed": "govuk-tag--grey",
}


def status_tag(status: str) -> Markup:
    """A referral's status as a GOV.UK tag: "new" for one nobody has contacted yet.

    A template global, not a macro: a caseload draws one a line and a register one a
    row, and calling a Jinja macro costs more than the tag itself.
    """
    label = "new" if status == "accepted" else status.replace("_", " ")
    colour = STATUS_TAG_COLOURS.get(status, "govuk-tag--grey")
    return Markup('<strong class="govuk-tag %s">%s</strong>') % (colour, label)


TEMPLATE_GLOBALS = {"status_tag": status_tag}

NOTICE = "notice"
"""Session key of a one-off message for the next page (never put in an address)."""


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {
        key: value[:MAX_FIELD_LENGTH]
        for key, value in form.items()
        if isinstance(value, str) and key != "_csrf_token"
    }


def _htmx(request: Request[Any, Any, Any]) -> bool:
    """Sent by htmx (``HX-Request``): answer with the part of the page it swaps, not a redirect.

    Without JavaScript the same form is a plain POST answered by a redirect, so
    every form works either way; the services called are the same.
    """
    return isinstance(request, HTMXRequest) and bool(request.htmx)


def _notify(request: Request[Any, Any, Any], heading: str, lines: list[str] | None = None) -> None:
    session = request.session
    if isinstance(session, dict):
        session[NOTICE] = {"heading": heading, "lines": lines or []}


def _notice(request: Request[Any, Any, Any]) -> dict[str, Any] | None:
    session = request.session
    if isinstance(session, dict) and NOTICE in session:
        notice: dict[str, Any] = session.pop(NOTICE)
        return notice
    return None


def _secret(state: State) -> str:
    settings: Settings = state.settings
    return purpose_key(settings, KeyPurpose.pseudonym)


@dataclass
class DateField:
    """A GOV.UK date input's three boxes, as typed, and the day they make (if any)."""

    day: str
    month: str
    year: str
    value: date | None


def _date_field(
    form: dict[str, str], name: str, label: str, *, required: bool = True
) -> tuple[DateField, FieldError | None]:
    """Read ``name-day``, ``name-month`` and ``name-year``; the problem links to the day box."""
    day, month, year = (form.get(f"{name}-{part}", "").strip() for part in ("day", "month", "year"))
    field = DateField(day, month, year, None)
    if not (day or month or year):
        if required:
            return field, FieldError("required", f"{name}-day", f"Enter the {label}.")
        return field, None
    if not (day and month and year):
        return field, FieldError(
            "incomplete", f"{name}-day", f"The {label} must include a day, month and year."
        )
    try:
        field.value = date(int(year), int(month), int(day))
    except ValueError:
        return field, FieldError("invalid", f"{name}-day", f"The {label} must be a real date.")
    if len(year) != 4:
        field.value = None
        return field, FieldError("invalid", f"{name}-day", f"The {label}'s year must be 4 digits.")
    return field, None


def _date_errors(problems: list[FieldError], name: str) -> list[FieldError]:
    """A service's problem with a date field, linked to that date input's day box."""
    return [
        FieldError(p.code, f"{name}-day", p.message) if p.field == name else p for p in problems
    ]


def _problems(error: ApplicationError) -> list[FieldError]:
    """The service's problems, or its one message when it names none."""
    return list(error.errors) or [FieldError(error.code or "conflict", "", error.message)]


# --- caseload ---


@dataclass
class CaseloadLine:
    id: UUID
    reference: str
    name: str
    received_on: date
    status: str
    status_on: date
    working_days: int = 0
    overdue: bool = False


def _line(view: ReferralView) -> CaseloadLine:
    assert isinstance(view, ReferralNamedView)  # facilitators and admins see the named view
    return CaseloadLine(
        view.id, view.reference, _name(view), view.received_on, view.status, view.status_on
    )


def _name(view: Any) -> str:
    """The name a facilitator's line shows: a caseload section's line or the named view."""
    if isinstance(view, ReferralNamedView | CaseloadReferral) and not view.restricted:
        return f"{view.first_name or ''} {view.last_name or ''}".strip()
    return "Details withheld"


CASELOAD_PAGE_SIZE = 50
"""Lines a caseload section shows at once: a facilitator works down a page, not 500 lines
(GOV.UK's pagination pattern); everyone else is a page on, or found by reference or name."""

CaseloadPageNumber = Annotated[
    int,
    QueryParameter(ge=1, le=MAX_OFFSET // CASELOAD_PAGE_SIZE, description="A section's page."),
]
"""A caseload section's page number: a page past the last shows the last."""


@dataclass
class CaseloadSection:
    """One section of the caseload as the page shows it: a page of its lines, how many
    there are in all, and the links to its other pages."""

    anchor: str
    lines: list[CaseloadLine]
    total: int
    page: int
    pages: int
    first_shown: int
    links: list[tuple[int, str] | None]
    """Each page number linked (``None``: the numbers left out between them), with its
    address."""
    previous: str | None
    next: str | None


def page_numbers(page: int, pages: int) -> list[int | None]:
    """The page numbers a pagination shows, GOV.UK's way: the first, the last, the
    current and its neighbours; ``None`` where numbers are left out."""
    shown = sorted({1, pages, *range(max(1, page - 1), min(pages, page + 1) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers


def _caseload_address(pages: dict[str, int], anchor: str, page: int) -> str:
    """The caseload with section ``anchor`` at ``page`` and every other section where it
    is: page numbers only, never anything about a person."""
    asked = {**pages, anchor: page}
    query = "&".join(f"{name}_page={number}" for name, number in asked.items() if number > 1)
    return f"{CASELOAD}{'?' + query if query else ''}#{anchor}"


async def _section(
    actor: Principal,
    anchor: str,
    statuses: tuple[Status, ...],
    waited_since: str,
    pages_asked: dict[str, int],
) -> CaseloadSection:
    found = await referrals.caseload_page(
        actor, statuses, waited_since, pages_asked[anchor], CASELOAD_PAGE_SIZE
    )
    lines = [
        CaseloadLine(r.id, r.reference, _name(r), r.received_on, r.status, r.status_on)
        for r in found.lines
    ]
    # Links from the page shown (a page past the last was clamped to it).
    here = {**pages_asked, anchor: found.page}

    def address(number: int) -> str:
        return _caseload_address(here, anchor, number)

    return CaseloadSection(
        anchor=anchor,
        lines=lines,
        total=found.total,
        page=found.page,
        pages=found.pages,
        first_shown=(found.page - 1) * CASELOAD_PAGE_SIZE + 1,
        links=[
            None if number is None else (number, address(number))
            for number in page_numbers(found.page, found.pages)
        ],
        previous=address(found.page - 1) if found.page > 1 else None,
        next=address(found.page + 1) if found.page < found.pages else None,
    )


@get(CASELOAD, guards=[STAFF], opt={browser.NAV: "Caseload", "nav_order": 10})
async def caseload(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    state: State,
    waiting_page: CaseloadPageNumber = 1,
    contacted_page: CaseloadPageNumber = 1,
    engaged_page: CaseloadPageNumber = 1,
) -> Template:
    """Waiting for first contact (oldest first, overdue ones highlighted), contacted,
    engaged: each a page of those waiting longest, with links to its other pages."""
    settings: Settings = state.settings
    now = today()
    asked = {"waiting": waiting_page, "contacted": contacted_page, "engaged": engaged_page}
    waiting = await _section(actor, "waiting", (Status.accepted,), "received_on", asked)
    for line in waiting.lines:
        line.working_days = rules.working_days_between(line.received_on, now)
        line.overdue = rules.overdue_for_contact(
            line.received_on, now, settings.first_contact_working_days
        )
    contacted = await _section(actor, "contacted", (Status.contacted,), "status_on", asked)
    engaged = await _section(actor, "engaged", (Status.engaged, Status.started), "status_on", asked)
    return browser.page(
        request,
        "delivery/caseload.html",
        title="Caseload",
        waiting=waiting,
        contacted=contacted,
        engaged=engaged,
        limit_days=settings.first_contact_working_days,
        search={"reference": "", "name": ""},
        results=None,
    )


@post(CASELOAD + "/search", guards=[STAFF], status_code=200)
async def caseload_search(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    state: State,
    outcomes: NamedDependency[OutcomesHooks],
) -> Template:
    """Find a referral by reference or name: the ``POST /referrals/search`` service, audited.

    A POST, so a name never reaches an address, a log or the browser's history.
    """
    form = await _form(request)
    reference, name = form.get("reference", "").strip(), form.get("name", "").strip()
    problems: list[FieldError] = []
    if not reference and not name:
        problems.append(FieldError("required", "reference", "Enter a reference or a name."))
    if len(reference) > 40:
        problems.append(
            FieldError("too_long", "reference", "A reference is at most 40 characters.")
        )
    if len(name) > 200:
        problems.append(FieldError("too_long", "name", "A name is at most 200 characters."))
    results = None
    if not problems:
        body = msgspec.convert(
            {"reference": reference or None, "name": name or None}, ReferralSearch
        )
        try:
            found = await referrals.search_referrals(
                actor, body, Paging(50, 0), _secret(state), outcomes
            )
        except InvalidInput as error:
            problems = _problems(error)
        else:
            results = [_line(v) for v in found.items]
    return browser.page(
        request,
        "delivery/search.html",
        status_code=422 if problems else 200,
        title="Find a referral",
        errors=problems,
        search={"reference": reference, "name": name},
        results=results,
    )


# --- a referral ---


def _referral_path(referral_id: UUID) -> str:
    return f"{CASELOAD}/{referral_id}"


async def _referral_page(
    request: Request[Any, Any, Any],
    actor: Principal,
    referral_id: UUID,
    state: State,
    outcomes: OutcomesHooks,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    step: dict[str, Any] | None = None,
    notice: dict[str, Any] | None = None,
) -> Template:
    view = await referrals.get_referral(actor, referral_id, _secret(state), outcomes)
    assert isinstance(view, ReferralNamedView)  # facilitators and admins see the named view
    allowed = [s for s in allowed_next(Status(view.status)) if s in OFFERED_STEPS]
    if view.restricted:
        allowed = []  # consent withdrawn: nothing more is recorded
    group = None
    if Status(view.status) in (Status.engaged, Status.started):
        group = await services.group_of(referral_id)
    fragment = _htmx(request)
    return browser.page(
        request,
        "delivery/_referral_progress.html" if fragment else "delivery/referral.html",
        status_code=status_code,
        title=f"Referral {view.reference}",
        errors=errors or [],
        referral=view,
        name=_name(view),
        allowed=allowed,
        hints=STEP_HINTS,
        step=step or {"type": "", "on": DateField("", "", "", None), "note": ""},
        group=group,
        notice=notice or _notice(request),
        fragment=fragment,
    )


@get(CASELOAD + "/{referral_id:uuid}", guards=[STAFF])
async def referral_page(
    request: Request[Any, Any, Any],
    referral_id: FromPath[UUID],
    actor: access.SignedIn,
    state: State,
    outcomes: NamedDependency[OutcomesHooks],
) -> Template:
    """The named record, its timeline (voided steps struck through), and the steps allowed now."""
    return await _referral_page(request, actor, referral_id, state, outcomes)


@post(CASELOAD + "/{referral_id:uuid}/steps", guards=[STAFF], status_code=303)
async def record_step(
    request: Request[Any, Any, Any],
    referral_id: FromPath[UUID],
    actor: access.SignedIn,
    state: State,
    outcomes: NamedDependency[OutcomesHooks],
) -> Page:
    """Record contacted, engaged or an exit, dated: ``referrals.services.record_event``."""
    form = await _form(request)
    chosen = form.get("type", "")
    on, date_problem = _date_field(form, "on", "date it happened")
    note = form.get("note", "").strip()
    problems: list[FieldError] = []
    if chosen not in {s.value for s in OFFERED_STEPS}:
        problems.append(FieldError("required", "type", "Choose what happened."))
    if date_problem:
        problems.append(date_problem)
    if len(note) > 2000:
        problems.append(FieldError("too_long", "note", "A note is at most 2000 characters."))
    status_code = 422
    if not problems:
        assert on.value is not None
        event = EventCreate(type=Status(chosen), on=on.value, note=note or None)
        settings: Settings = state.settings
        try:
            await referrals.record_event(referral_id, event, actor, today(), settings.backdate_days)
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            problems = _date_errors(_problems(error), "on")
            status_code = error.status_code
        else:
            recorded = f"Recorded: {chosen} on {on.value:%-d %B %Y}"
            if _htmx(request):
                return await _referral_page(
                    request, actor, referral_id, state, outcomes, notice={"heading": recorded}
                )
            _notify(request, recorded)
            return Redirect(_referral_path(referral_id), status_code=303)
    return await _referral_page(
        request,
        actor,
        referral_id,
        state,
        outcomes,
        status_code=status_code,
        errors=problems,
        step={"type": chosen, "on": on, "note": note},
    )


# --- groups ---


def _group_path(group_id: UUID) -> str:
    return f"{GROUPS}/{group_id}"


async def _groups_page(
    request: Request[Any, Any, Any],
    actor: Principal,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    entered: dict[str, Any] | None = None,
) -> Template:
    groups = await services.list_groups(actor, Paging(MAX_LIMIT, 0))
    default_facilitator = actor.username if actor.role == Role.facilitator.value else ""
    return browser.page(
        request,
        "delivery/groups.html",
        status_code=status_code,
        title="Groups",
        errors=errors or [],
        groups=groups.items,
        entered=entered
        or {
            "name": "",
            "starts_on": DateField("", "", "", None),
            "capacity": "",
            "facilitators": default_facilitator,
        },
    )


@get(GROUPS, guards=[STAFF], opt={browser.NAV: "Groups", "nav_order": 20})
async def groups_page(request: Request[Any, Any, Any], actor: access.SignedIn) -> Template:
    """The groups (a facilitator's own; every group for admins) and a form to start one."""
    return await _groups_page(request, actor)


@post(GROUPS, guards=[STAFF], status_code=303)
async def create_group(request: Request[Any, Any, Any], actor: access.SignedIn) -> Page:
    form = await _form(request)
    name = form.get("name", "").strip()
    starts_on, date_problem = _date_field(form, "starts_on", "start date")
    capacity_text = form.get("capacity", "").strip()
    facilitators = [f.strip() for f in form.get("facilitators", "").split(",") if f.strip()]
    problems: list[FieldError] = []
    if not name:
        problems.append(FieldError("required", "name", "Enter the group's name."))
    elif len(name) > 100:
        problems.append(FieldError("too_long", "name", "A name is at most 100 characters."))
    if date_problem:
        problems.append(date_problem)
    capacity = int(capacity_text) if capacity_text.isdigit() else 0
    if not 1 <= capacity <= 100:
        problems.append(
            FieldError("invalid", "capacity", "Enter the number of places, from 1 to 100.")
        )
    if not 1 <= len(facilitators) <= 10:
        problems.append(
            FieldError("required", "facilitators", "Enter from 1 to 10 facilitators' usernames.")
        )
    entered = {
        "name": name,
        "starts_on": starts_on,
        "capacity": capacity_text,
        "facilitators": form.get("facilitators", ""),
    }
    status_code = 422
    if not problems:
        assert starts_on.value is not None
        data = schemas.GroupCreate(
            name=name, starts_on=starts_on.value, facilitators=facilitators, capacity=capacity
        )
        try:
            group = await services.create_group(data, actor)
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            status_code = error.status_code
            problems = [
                FieldError(p.code, "facilitators", f"{p.message} ({facilitators[_index(p.field)]})")
                if p.field.startswith("facilitators[")
                else p
                for p in _problems(error)
            ]
            if error.status_code == 409:
                problems = [FieldError(p.code, p.field or "name", p.message) for p in problems]
        else:
            _notify(request, f"Group {group.name} created")
            return Redirect(_group_path(group.id), status_code=303)
    return await _groups_page(
        request, actor, status_code=status_code, errors=problems, entered=entered
    )


def _index(field: str) -> int:
    """The number in ``facilitators[2]``."""
    return int(field[field.index("[") + 1 : field.index("]")])


async def _group_page(
    request: Request[Any, Any, Any],
    actor: Principal,
    group_id: UUID,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    entered: dict[str, Any] | None = None,
    notice: dict[str, Any] | None = None,
    members_only: bool = False,
) -> Template:
    await services.require_group_access(actor, group_id)
    group = await services.get_group(group_id)
    full = len(group.members) >= group.capacity
    waiting = None
    if not full:
        waiting = await services.waiting_list(actor, today(), Paging(MAX_LIMIT, 0))
    next_number = max((s.number for s in group.sessions if s.kind == "group"), default=0) + 1
    fragment = _htmx(request) and members_only
    return browser.page(
        request,
        "delivery/_members.html" if fragment else "delivery/group.html",
        status_code=status_code,
        title=f"Group {group.name}",
        errors=errors or [],
        group=group,
        full=full,
        waiting=waiting.people.items if waiting and waiting.people else [],
        kinds=list(rules.SessionKind),
        entered=entered
        or {
            "referral_id": "",
            "reference": "",
            "joined_on": DateField("", "", "", None),
            "number": str(next_number),
            "held_on": DateField("", "", "", None),
            "kind": rules.SessionKind.group.value,
        },
        notice=notice or _notice(request),
        fragment=fragment,
    )


@get(GROUPS + "/{group_id:uuid}", guards=[STAFF])
async def group_page(
    request: Request[Any, Any, Any], group_id: FromPath[UUID], actor: access.SignedIn
) -> Template:
    """A group: its members (add one from the waiting list; end a place), its sessions."""
    return await _group_page(request, actor, group_id)


@post(GROUPS + "/{group_id:uuid}/members", guards=[STAFF], status_code=303)
async def add_member(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    actor: access.SignedIn,
    state: State,
    outcomes: NamedDependency[OutcomesHooks],
) -> Page:
    """A place for someone on the waiting list, or a move here by reference (a transfer)."""
    form = await _form(request)
    chosen, reference = form.get("referral_id", "").strip(), form.get("reference", "").strip()
    joined_on, date_problem = _date_field(
        form, "joined_on", "date the place starts", required=False
    )
    entered = {
        "referral_id": chosen,
        "reference": reference,
        "joined_on": joined_on,
        "number": "",
        "held_on": DateField("", "", "", None),
        "kind": rules.SessionKind.group.value,
    }
    problems: list[FieldError] = []
    referral_id = None
    if chosen:
        try:
            referral_id = UUID(chosen)
        except ValueError:
            problems.append(FieldError("invalid", "referral_id", "Choose someone from the list."))
    elif reference and len(reference) <= 40:
        found = await referrals.search_referrals(
            actor, ReferralSearch(reference=reference), Paging(1, 0), _secret(state), outcomes
        )
        if found.items:
            referral_id = found.items[0].id
        else:
            problems.append(FieldError("not_found", "reference", "No referral has this reference."))
    else:
        problems.append(
            FieldError("required", "referral_id", "Choose someone waiting, or enter a reference.")
        )
    if date_problem:
        problems.append(date_problem)
    status_code = 422
    if referral_id is not None and not problems:
        data = schemas.MemberAdd(referral_id=referral_id, joined_on=joined_on.value)
        try:
            await services.add_member(group_id, data, actor, today())
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            status_code = error.status_code
            field = "referral_id" if chosen else "reference"
            problems = [
                FieldError(p.code, "joined_on-day" if p.field == "joined_on" else field, p.message)
                for p in _problems(error)
            ]
        else:
            if _htmx(request):
                return await _group_page(
                    request,
                    actor,
                    group_id,
                    notice={"heading": "Added to the group"},
                    members_only=True,
                )
            _notify(request, "Added to the group")
            return Redirect(_group_path(group_id), status_code=303)
    return await _group_page(
        request,
        actor,
        group_id,
        status_code=status_code,
        errors=problems,
        entered=entered,
        members_only=True,
    )


@get(GROUPS + "/{group_id:uuid}/members/{referral_id:uuid}/remove", guards=[STAFF])
async def remove_member_page(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    referral_id: FromPath[UUID],
    actor: access.SignedIn,
) -> Template:
    """Ending a place asks why (and from when) first."""
    await services.require_group_access(actor, group_id)
    group = await services.get_group(group_id)
    member = next((m for m in group.members if m.referral_id == referral_id), None)
    if member is None:
        raise InvalidInput("Not a member of this group.")
    return browser.page(
        request,
        "delivery/remove_member.html",
        title=f"End {member.reference}'s place in {group.name}",
        group=group,
        member=member,
        entered={"reason": "", "on": DateField("", "", "", None)},
    )


@post(
    GROUPS + "/{group_id:uuid}/members/{referral_id:uuid}/remove", guards=[STAFF], status_code=303
)
async def remove_member(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    referral_id: FromPath[UUID],
    actor: access.SignedIn,
) -> Page:
    form = await _form(request)
    reason = form.get("reason", "").strip()
    on, date_problem = _date_field(form, "on", "date the place ended", required=False)
    problems: list[FieldError] = []
    if not reason:
        problems.append(FieldError("required", "reason", "Say why the place is ending."))
    elif len(reason) > 2000:
        problems.append(FieldError("too_long", "reason", "A reason is at most 2000 characters."))
    if date_problem:
        problems.append(date_problem)
    status_code = 422
    if not problems:
        try:
            await services.remove_member(
                group_id,
                referral_id,
                schemas.MemberRemove(reason=reason, on=on.value),
                actor,
                today(),
            )
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            status_code = error.status_code
            problems = _date_errors(_problems(error), "on")
        else:
            _notify(request, "The place has ended")
            return Redirect(_group_path(group_id), status_code=303)
    await services.require_group_access(actor, group_id)
    group = await services.get_group(group_id)
    member = next((m for m in group.members if m.referral_id == referral_id), None)
    if member is None:
        raise InvalidInput("Not a member of this group.")
    return browser.page(
        request,
        "delivery/remove_member.html",
        status_code=status_code,
        title=f"End {member.reference}'s place in {group.name}",
        errors=problems,
        group=group,
        member=member,
        entered={"reason": reason, "on": on},
    )


@post(GROUPS + "/{group_id:uuid}/sessions", guards=[STAFF], status_code=303)
async def add_session(
    request: Request[Any, Any, Any], group_id: FromPath[UUID], actor: access.SignedIn
) -> Page:
    """Schedule a session: its number, day and kind (group or one-to-one)."""
    form = await _form(request)
    number_text = form.get("number", "").strip()
    held_on, date_problem = _date_field(form, "held_on", "session's date")
    kind = form.get("kind", "")
    problems: list[FieldError] = []
    number = int(number_text) if number_text.isdigit() else 0
    if not 1 <= number <= 500:
        problems.append(
            FieldError("invalid", "number", "Enter the session's number, from 1 to 500.")
        )
    if date_problem:
        problems.append(date_problem)
    if kind not in {k.value for k in rules.SessionKind}:
        problems.append(FieldError("required", "kind", "Choose the kind of session."))
    entered = {
        "referral_id": "",
        "reference": "",
        "joined_on": DateField("", "", "", None),
        "number": number_text,
        "held_on": held_on,
        "kind": kind,
    }
    status_code = 422
    if not problems:
        assert held_on.value is not None
        data = schemas.SessionCreate(
            number=number, held_on=held_on.value, kind=rules.SessionKind(kind)
        )
        try:
            await services.add_session(group_id, data, actor)
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            status_code = error.status_code
            problems = _date_errors(_problems(error), "held_on")
            problems = [FieldError(p.code, p.field or "held_on-day", p.message) for p in problems]
        else:
            _notify(request, f"Session {number} scheduled for {held_on.value:%-d %B %Y}")
            return Redirect(_group_path(group_id), status_code=303)
    return await _group_page(
        request, actor, group_id, status_code=status_code, errors=problems, entered=entered
    )


# --- moving and cancelling a session ---


def _session_path(group_id: UUID, session_id: UUID, change: str) -> str:
    return f"{GROUPS}/{group_id}/sessions/{session_id}/{change}"


async def _group_session(
    actor: Principal, group_id: UUID, session_id: UUID
) -> tuple[schemas.Group, schemas.SessionSummary]:
    await services.require_group_access(actor, group_id)
    group = await services.get_group(group_id)
    session = next((s for s in group.sessions if s.id == session_id), None)
    if session is None:
        raise NotFound("This session is not one of this group's.")
    return group, session


def _change_problems(
    error: ApplicationError, actor: Principal, date_field: str | None = None
) -> list[FieldError]:
    """The service's refusal in a person's words: a locked quarter says who may still change it."""
    problems: list[FieldError] = []
    for p in _problems(error):
        if p.code == "quarter_locked":
            quarters = ", ".join(error.extra.get("locked_quarters", [])) or "That quarter"
            if actor.role == Role.admin.value:
                message = (
                    f"{quarters} is reported and locked: this would change figures already "
                    "published. To make the change anyway, say why a reported quarter changes."
                )
                p = FieldError(p.code, "override_reason", message)
            else:
                message = (
                    f"{quarters} is reported and locked: this would change figures already "
                    "published. Only an admin can make this change."
                )
                p = FieldError(p.code, "", message)
        elif date_field and p.field == "held_on":
            p = FieldError(p.code, date_field, p.message)
        problems.append(p)
    return problems


def _reason_problems(form: dict[str, str], what: str) -> list[FieldError]:
    """``referrals.rules.reason_problems``, the rule the service applies, worded for this page."""
    return [
        FieldError(p.code, p.field, f"Say why the session is {what}.")
        if p.code == "required"
        else p
        for p in reason_problems(
            {"reason": form.get("reason", ""), "override_reason": form.get("override_reason")}
        )
    ]


def _session_change_page(
    request: Request[Any, Any, Any],
    template: str,
    title: str,
    group: schemas.Group,
    session: schemas.SessionSummary,
    entered: dict[str, Any],
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
) -> Template:
    actor = browser.signed_in_person(request)
    return browser.page(
        request,
        template,
        status_code=status_code,
        title=title,
        errors=errors or [],
        group=group,
        session=session,
        entered=entered,
        may_override=actor is not None and actor.role == Role.admin.value,
    )


def _move_title(session: schemas.SessionSummary) -> str:
    return f"Move session {session.number}"


@get(GROUPS + "/{group_id:uuid}/sessions/{session_id:uuid}/move", guards=[STAFF])
async def move_session_page(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    session_id: FromPath[UUID],
    actor: access.SignedIn,
) -> Template:
    """Move a session to another day: the new day and why."""
    group, session = await _group_session(actor, group_id, session_id)
    entered = {"held_on": DateField("", "", "", None), "reason": "", "override_reason": ""}
    return _session_change_page(
        request, "delivery/session_move.html", _move_title(session), group, session, entered
    )


@post(GROUPS + "/{group_id:uuid}/sessions/{session_id:uuid}/move", guards=[STAFF], status_code=303)
async def move_session(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    session_id: FromPath[UUID],
    actor: access.SignedIn,
) -> Page:
    """``services.move_session``, as ``PATCH /sessions/{id}``: its 409s and 422s as messages."""
    form = await _form(request)
    group, session = await _group_session(actor, group_id, session_id)
    held_on, date_problem = _date_field(form, "held_on", "new date")
    override = form.get("override_reason", "").strip()
    entered = {"held_on": held_on, "reason": form.get("reason", ""), "override_reason": override}
    problems = [date_problem] if date_problem else []
    problems += _reason_problems(form, "moved")
    status_code = 422
    if not problems:
        assert held_on.value is not None
        data = schemas.SessionMove(
            held_on=held_on.value,
            reason=form.get("reason", ""),
            override_reason=override or None,
        )
        try:
            await services.move_session(session_id, data, actor, today())
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            status_code = error.status_code
            problems = _change_problems(error, actor, "held_on-day")
        else:
            _notify(
                request,
                f"Session {session.number} moved to {held_on.value:%-d %B %Y}",
            )
            return Redirect(_group_path(group_id), status_code=303)
    return _session_change_page(
        request,
        "delivery/session_move.html",
        _move_title(session),
        group,
        session,
        entered,
        status_code=status_code,
        errors=problems,
    )


def _cancel_title(session: schemas.SessionSummary) -> str:
    return f"Cancel session {session.number}"


@get(GROUPS + "/{group_id:uuid}/sessions/{session_id:uuid}/cancel", guards=[STAFF])
async def cancel_session_page(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    session_id: FromPath[UUID],
    actor: access.SignedIn,
) -> Template:
    """Cancelling a session asks why first: it stays listed, its marks count for nothing."""
    group, session = await _group_session(actor, group_id, session_id)
    entered = {"reason": "", "override_reason": ""}
    return _session_change_page(
        request, "delivery/session_cancel.html", _cancel_title(session), group, session, entered
    )


@post(
    GROUPS + "/{group_id:uuid}/sessions/{session_id:uuid}/cancel", guards=[STAFF], status_code=303
)
async def cancel_session(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    session_id: FromPath[UUID],
    actor: access.SignedIn,
) -> Page:
    """``services.cancel_session``, as ``POST /sessions/{id}/cancel``: refusals as messages."""
    form = await _form(request)
    group, session = await _group_session(actor, group_id, session_id)
    override = form.get("override_reason", "").strip()
    entered = {"reason": form.get("reason", ""), "override_reason": override}
    problems = _reason_problems(form, "cancelled")
    status_code = 422
    if not problems:
        data = schemas.SessionCancel(
            reason=form.get("reason", ""), override_reason=override or None
        )
        try:
            await services.cancel_session(session_id, data, actor)
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            status_code = error.status_code
            problems = _change_problems(error, actor)
        else:
            _notify(request, f"Session {session.number} cancelled")
            return Redirect(_group_path(group_id), status_code=303)
    return _session_change_page(
        request,
        "delivery/session_cancel.html",
        _cancel_title(session),
        group,
        session,
        entered,
        status_code=status_code,
        errors=problems,
    )


# --- the register ---


def _register_path(group_id: UUID, session_id: UUID) -> str:
    return f"{GROUPS}/{group_id}/sessions/{session_id}/register"


@dataclass(frozen=True)
class RegisterRadio:
    id: str
    value: str
    label: str
    checked: bool


MARK_FIELD = "mark-"
"""A register row's form field: this, then the referral's id."""


def mark_field(referral_id: UUID | str) -> str:
    return f"{MARK_FIELD}{referral_id}"


class RegisterLine(NamedTuple):
    """Everything one member's row of the register shows: the key its HTML is kept under."""

    referral_id: UUID
    reference: str
    status: str
    """The referral's status now (started appears once the register says so)."""
    mark: str
    marked_by: str | None
    error: str | None


@dataclass(frozen=True)
class RegisterRow:
    """A line worked out for drawing, so the template only writes it out: the twelve rows
    of radios were most of the page's drawing (bench/page_bench.py)."""

    line: RegisterLine
    field: str
    """The row's form field (``mark-<referral id>``), the radios' name and ids' stem."""
    described_by: str
    """The ids of the earlier mark's hint and the error message shown, for the fieldset."""
    radios: tuple[RegisterRadio, ...]

    @classmethod
    def of(cls, line: RegisterLine) -> RegisterRow:
        field = mark_field(line.referral_id)
        described = [f"{field}-hint"] if line.marked_by else []
        if line.error:
            described.append(f"{field}-error")
        radios = tuple(
            RegisterRadio(field + suffix, value, label, line.mark == value)
            for suffix, value, label in MARK_CHOICES
        )
        return cls(line, field, " ".join(described), radios)


REGISTER_ROW = "delivery/_register_row.html"

DRAWN_ROWS_KEPT = 2048
"""Rows of HTML each server process keeps: about 170 twelve-person registers, 4 MB."""


@lru_cache(maxsize=DRAWN_ROWS_KEPT)
def _drawn_row(template: JinjaTemplate, line: RegisterLine) -> Markup:
    # The template's own output, every value in it escaped by Jinja's autoescape.
    return Markup(template.render(row=RegisterRow.of(line)))  # noqa: S704


def drawn_rows(request: Request[Any, Any, Any], lines: list[RegisterLine]) -> list[Markup]:
    """Each row's HTML, drawn once and kept.

    A register is drawn again and again with the same rows (every view, every save
    and the page after it), and drawing its radios was most of the page's time. The
    line is the key, and it holds everything its row shows (the mark, who marked it,
    the status, the error), so a line that changes is drawn anew; the same line always
    draws the same HTML.
    """
    engine = request.app.template_engine
    assert isinstance(engine, JinjaTemplateEngine)  # the app's one template engine
    template = engine.engine.get_template(REGISTER_ROW)
    return [_drawn_row(template, line) for line in lines]


async def _register_page(
    request: Request[Any, Any, Any],
    sheet: schemas.RegisterSheet,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    entered: dict[str, str] | None = None,
    notice: dict[str, Any] | None = None,
) -> Template:
    register = sheet.register
    marks = {line.referral_id: line for line in register.marks}
    error_for = {e.field: e.message for e in errors or () if e.field}
    lines = [
        RegisterLine(
            m.referral_id,
            m.reference,
            m.status,
            (entered or {}).get(str(m.referral_id), marks[m.referral_id].status)
            if m.referral_id in marks
            else (entered or {}).get(str(m.referral_id), ""),
            marks[m.referral_id].marked_by if m.referral_id in marks else None,
            error_for.get(mark_field(m.referral_id)),
        )
        for m in sheet.members
    ]
    # Someone marked here who has since left the group keeps their line, unchangeable here.
    members = {m.referral_id for m in sheet.members}
    left = [line for line in register.marks if line.referral_id not in members]
    fragment = _htmx(request)
    return browser.page(
        request,
        "delivery/_register.html" if fragment else "delivery/register.html",
        status_code=status_code,
        title=f"Register: {sheet.group_name}, session {sheet.session.number}",
        errors=errors or [],
        group={"id": sheet.group_id, "name": sheet.group_name},
        session=sheet.session,
        register=register,
        drawn_rows=drawn_rows(request, lines),
        left=left,
        notice=notice or _notice(request),
        fragment=fragment,
    )


@get(GROUPS + "/{group_id:uuid}/sessions/{session_id:uuid}/register", guards=[STAFF])
async def register_page(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    session_id: FromPath[UUID],
    actor: access.SignedIn,
) -> Template:
    """One row per member: attended, late, excused or absent; saved in one go."""
    sheet = await services.register_sheet(session_id, actor, group_id)
    return await _register_page(request, sheet)


def _entered_marks(form: dict[str, str]) -> tuple[dict[str, str], list[schemas.AttendanceMark]]:
    """The rows as sent (``mark-<referral id>``), and those holding a mark. A row left
    blank or holding something else is no mark: the register service names each member
    not marked."""
    entered: dict[str, str] = {}
    marks: list[schemas.AttendanceMark] = []
    for field, value in form.items():
        if not field.startswith(MARK_FIELD):
            continue
        try:
            referral_id = UUID(field.removeprefix(MARK_FIELD))
        except ValueError:
            continue
        entered[str(referral_id)] = value
        if value in MARK_VALUES:
            marks.append(schemas.AttendanceMark(referral_id, rules.Mark(value)))
    return entered, marks


@post(
    GROUPS + "/{group_id:uuid}/sessions/{session_id:uuid}/register",
    guards=[STAFF],
    status_code=303,
)
async def save_register(
    request: Request[Any, Any, Any],
    group_id: FromPath[UUID],
    session_id: FromPath[UUID],
    actor: access.SignedIn,
) -> Page:
    """Save every mark at once with the register service; a correction names the earlier mark.

    The service checks that every member is marked and answers what the page draws
    afterwards, so a save costs what the API's ``PUT`` costs, plus the drawing."""
    entered, marks = _entered_marks(await _form(request))
    try:
        saved = await services.record_register(
            session_id, marks, actor, today(), group_id=group_id, every_member=True
        )
    except ApplicationError as error:
        if error.status_code not in (409, 422):
            raise
        sheet = await services.register_sheet(session_id, actor, group_id)
        return await _register_page(
            request,
            sheet,
            status_code=error.status_code,
            errors=[_mark_problem(p, marks) for p in _problems(error)],
            entered=entered,
        )
    corrected = [
        f"{line.reference}: {saved.was[line.referral_id]}, now {line.status}"
        for line in saved.register.marks
        if line.referral_id in saved.was
    ]
    heading = "Register corrected" if corrected else "Register saved"
    if _htmx(request):
        return await _register_page(request, saved, notice={"heading": heading, "lines": corrected})
    _notify(request, heading, corrected)
    return Redirect(_register_path(group_id, session_id), status_code=303)


def _mark_problem(problem: FieldError, marks: list[schemas.AttendanceMark]) -> FieldError:
    """``[2].referral_id`` from the service: the third mark's row on the page; a member
    not marked: their row."""
    if problem.code == "unmarked":
        return FieldError(problem.code, mark_field(problem.field), problem.message)
    if problem.field.startswith("[") and "]" in problem.field:
        index = int(problem.field[1 : problem.field.index("]")])
        if 0 <= index < len(marks):
            return FieldError(problem.code, mark_field(marks[index].referral_id), problem.message)
    return FieldError(problem.code, "", problem.message)


# --- at risk and waiting ---


@get("/delivery/at-risk", guards=[STAFF], opt={browser.NAV: "At risk", "nav_order": 30})
async def at_risk_page(request: Request[Any, Any, Any], actor: access.SignedIn) -> Template:
    """People with the set number of unexcused absences in a row (a facilitator's own groups)."""
    absences = (await services.programme_settings()).at_risk_absences
    people = await services.at_risk(actor, absences, Paging(MAX_LIMIT, 0))
    return browser.page(
        request, "delivery/at_risk.html", title="At risk", people=people.items, absences=absences
    )


@get("/delivery/waiting-list", guards=[STAFF], opt={browser.NAV: "Waiting list", "nav_order": 40})
async def waiting_list_page(request: Request[Any, Any, Any], actor: access.SignedIn) -> Template:
    """Engaged people without a group place, longest waiting first."""
    waiting = await services.waiting_list(actor, today(), Paging(MAX_LIMIT, 0))
    return browser.page(
        request,
        "delivery/waiting_list.html",
        title="Waiting list",
        waiting=waiting,
        people=waiting.people.items if waiting.people else [],
    )


# --- programme settings (admins) ---

SETTINGS = "/admin/settings"
ADMINS = access.requires(Role.admin)

SETTING_FIELDS = (
    ("weeks", "Programme length in weeks", "The completion rule counts this many weeks."),
    ("core_sessions", "Core sessions", "Sessions in the programme."),
    (
        "completion_min_sessions",
        "Sessions attended to complete",
        "At most the number of core sessions.",
    ),
    (
        "at_risk_absences",
        "Unexcused absences in a row that make someone at risk",
        "Raises the at-risk alert partner support sees.",
    ),
)


def _fixed_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """Settings read from the environment at start-up: shown, changed only by a restart."""
    return [
        (
            "Commissioned areas",
            ", ".join(settings.commissioned_areas),
            "INSPIRE_COMMISSIONED_AREAS",
        ),
        (
            "Working days to first contact",
            str(settings.first_contact_working_days),
            "INSPIRE_FIRST_CONTACT_WORKING_DAYS",
        ),
        ("Counts suppressed below", str(settings.suppress_below), "INSPIRE_SUPPRESS_BELOW"),
        ("Days a record may be back-dated", str(settings.backdate_days), "INSPIRE_BACKDATE_DAYS"),
        (
            "Minutes before an idle page session ends",
            str(settings.session_idle_seconds // 60),
            "INSPIRE_SESSION_IDLE_MINUTES",
        ),
        (
            "Minutes an API token lasts",
            str(settings.token_ttl_minutes),
            "INSPIRE_TOKEN_TTL_MINUTES",
        ),
    ]


async def _settings_page(
    request: Request[Any, Any, Any],
    state: State,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    entered: dict[str, str] | None = None,
    saved: bool = False,
) -> Template:
    current = await services.programme_settings()
    return browser.page(
        request,
        "delivery/settings.html",
        status_code=status_code,
        title="Programme settings",
        errors=errors or [],
        current=current,
        fields=SETTING_FIELDS,
        entered=entered
        or {
            **{name: str(getattr(current, name)) for name, _, _ in SETTING_FIELDS},
            "exit_review_required": "yes" if current.exit_review_required else "no",
        },
        fixed=_fixed_settings(state.settings),
        notice=_notice(request),
    )


@get(SETTINGS, guards=[ADMINS], opt={browser.NAV: "Programme settings", "nav_order": 70})
async def settings_page(request: Request[Any, Any, Any], state: State) -> Template:
    """The completion rule and the at-risk threshold (``PUT /programme/settings``, audited),
    and the settings read from the environment, shown only."""
    return await _settings_page(request, state)


@post(SETTINGS, guards=[ADMINS], status_code=303)
async def save_settings(
    request: Request[Any, Any, Any], actor: access.SignedIn, state: State
) -> Page:
    form = await _form(request)
    entered = {name: form.get(name, "").strip() for name, _, _ in SETTING_FIELDS}
    entered["exit_review_required"] = form.get("exit_review_required", "")
    problems: list[FieldError] = []
    values: dict[str, Any] = {}
    for name, label, _ in SETTING_FIELDS:
        text = entered[name]
        if not text.isdigit() or not 1 <= int(text) <= 1000:
            problems.append(FieldError("invalid", name, f"{label}: a whole number from 1 to 1000."))
        else:
            values[name] = int(text)
    if entered["exit_review_required"] not in ("yes", "no"):
        problems.append(
            FieldError("required", "exit_review_required", "Say whether an exit review is needed.")
        )
    else:
        values["exit_review_required"] = entered["exit_review_required"] == "yes"
    if not problems:
        try:
            await services.update_settings(
                msgspec.convert(values, schemas.ProgrammeSettingsUpdate), actor
            )
        except InvalidInput as error:
            problems = _problems(error)
        else:
            _notify(request, "Programme settings saved")
            return Redirect(SETTINGS, status_code=303)
    return await _settings_page(request, state, status_code=422, errors=problems, entered=entered)


PAGES = [
    settings_page,
    save_settings,
    caseload,
    caseload_search,
    referral_page,
    record_step,
    groups_page,
    create_group,
    group_page,
    add_member,
    remove_member_page,
    remove_member,
    add_session,
    move_session_page,
    move_session,
    cancel_session_page,
    cancel_session,
    register_page,
    save_register,
    at_risk_page,
    waiting_list_page,
]
