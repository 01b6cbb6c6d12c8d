"""The victim workers' web pages: the victims they support, and one victim's page.

Victim workers only: no other role opens any of these pages, admins included
(they read victims' records over the API, audited, and never need them on a
page). Each page calls the services ``GET /victims``, ``GET /victims/alerts``,
``GET /victims/{id}``, its feedback, history and progress call, so every read
is audited as the API audits it, and every change goes through the same
service as ``POST /victims/{id}/consent`` and ``POST /victims/{id}/feedback``.
Pages address a victim by id only; no name, phone number or date is ever put
in an address. Every answer says ``Cache-Control: no-store``
(``web.browser.SecurityHeaders``), so no victim's details stay in a browser's
cache on a shared computer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from outcomes import schemas, services
from outcomes.tables import Behaviour, FeelsSafer, Stage
from programme.platform.accounts import access
from programme.platform.accounts.schemas import Principal
from programme.platform.clock import today
from programme.platform.errors import ApplicationError, FieldError
from programme.platform.http_inputs import Offset
from programme.platform.paging import Paging
from programme.platform.tables import Role
from programme.platform.web import browser

TEMPLATES = Path(__file__).resolve().parent / "templates"

Page = Template | Redirect

VICTIM_WORKERS = access.requires(Role.victim_worker)

SUPPORT = "/partner-support"
PAGE_SIZE = 50
MAX_FIELD_LENGTH = 4096
"""Longer form values are cut: the services refuse anything near it anyway."""

NOTICE = "support_notice"
"""Session key of a one-off message for the next page (never put in an address)."""

STAGE_LABELS = {
    Stage.intake: "Intake",
    Stage.midpoint: "Midpoint",
    Stage.exit: "Exit",
    Stage.follow_up_6m: "Six months after",
}
BEHAVIOUR_LABELS = {
    Behaviour.stopped: "Stopped",
    Behaviour.reduced: "Reduced",
    Behaviour.same: "The same",
    Behaviour.worse: "Worse",
}
FEELS_SAFER_LABELS = {FeelsSafer.yes: "Yes", FeelsSafer.no: "No", FeelsSafer.unsure: "Not sure"}
ALERT_LABELS = {"at_risk": "At risk", "disengaged": "Disengaged"}
ALERT_HINTS = {
    "at_risk": "missed sessions in a row without an excuse",
    "disengaged": "has stopped taking part in the programme",
}
CONSENT_CHOICES = {
    "give": "Consent given",
    "refuse": "Consent refused",
    "withdraw": "Consent withdrawn",
}


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {
        key: value[:MAX_FIELD_LENGTH]
        for key, value in form.items()
        if isinstance(value, str) and key != "_csrf_token"
    }


def _notify(request: Request[Any, Any, Any], heading: str) -> None:
    if isinstance(request.session, dict):
        request.session[NOTICE] = heading


def _notice(request: Request[Any, Any, Any]) -> str | None:
    if isinstance(request.session, dict) and NOTICE in request.session:
        return str(request.session.pop(NOTICE))
    return None


@dataclass
class DateField:
    """A GOV.UK date input's three boxes, as typed, and the day they make (if any)."""

    day: str = ""
    month: str = ""
    year: str = ""
    value: date | None = None


def _date_field(form: dict[str, str], name: str, label: str) -> tuple[DateField, FieldError | None]:
    """``name-day``, ``name-month`` and ``name-year``; a problem links to the day box."""
    day, month, year = (form.get(f"{name}-{part}", "").strip() for part in ("day", "month", "year"))
    field = DateField(day, month, year)
    if not (day or month or year):
        return field, FieldError("required", f"{name}-day", f"Enter the {label}.")
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


def _problems(error: ApplicationError, date_field: str) -> list[FieldError]:
    """The service's problems (a date's linked to its day box), or its one message."""
    found = list(error.errors) or [FieldError(error.code or "conflict", "", error.message)]
    dates = {"on", "collected_on"}
    return [
        FieldError(p.code, f"{date_field}-day", p.message) if p.field in dates else p for p in found
    ]


def _victim_path(victim_id: UUID) -> str:
    return f"{SUPPORT}/{victim_id}"


# --- the victims a worker supports ---


@get(SUPPORT, guards=[VICTIM_WORKERS], opt={browser.NAV: "Victims", "nav_order": 10})
async def victims_page(
    request: Request[Any, Any, Any], actor: access.SignedIn, offset: Offset = 0
) -> Template:
    """The victims this worker supports, newest first, each with consent to contact and
    the perpetrator's programme status and latest alert; then every alert as one list.
    ``GET /victims`` and ``GET /victims/alerts``, audited as they are."""
    cases = await services.list_cases(actor, Paging(PAGE_SIZE, offset))
    alerts = await services.list_case_alerts(actor, Paging(PAGE_SIZE, 0))
    return browser.page(
        request,
        "outcomes/victims.html",
        title="Victims you support",
        cases=cases,
        alerts=alerts,
        alert_labels=ALERT_LABELS,
        page_size=PAGE_SIZE,
    )


# --- a victim ---


async def _victim_page(
    request: Request[Any, Any, Any],
    actor: Principal,
    victim_id: UUID,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    consent: dict[str, Any] | None = None,
    feedback: dict[str, Any] | None = None,
) -> Template:
    victim = await services.get_victim(victim_id, actor)
    progress = await services.perpetrator_progress(victim_id, actor)
    recorded = await services.list_feedback(victim_id, actor)
    history = await services.victim_history(victim_id, actor)
    by_stage = {f.stage: f for f in recorded}
    return browser.page(
        request,
        "outcomes/victim.html",
        status_code=status_code,
        title=f"{victim.first_name} {victim.last_name or ''}".strip(),
        errors=errors or [],
        victim=victim,
        progress=progress,
        alert_now=_alert_now(progress),
        stages=[(stage, STAGE_LABELS[stage], by_stage.get(stage.value)) for stage in Stage],
        history=history,
        stage_labels={s.value: label for s, label in STAGE_LABELS.items()},
        behaviour_labels={b.value: label for b, label in BEHAVIOUR_LABELS.items()},
        feels_safer_labels={f.value: label for f, label in FEELS_SAFER_LABELS.items()},
        alert_labels=ALERT_LABELS,
        alert_hints=ALERT_HINTS,
        consent_choices=CONSENT_CHOICES,
        consent=consent or {"choice": "", "on": DateField()},
        feedback=feedback
        or {
            "stage": "",
            "collected_on": DateField(),
            "behaviour": "",
            "feels_safer": "",
            "note": "",
            "reason": "",
        },
        notice=_notice(request),
    )


def _alert_now(progress: schemas.PerpetratorProgress) -> schemas.Alert | None:
    """The latest alert still standing, shown at the top: what partner support most needs
    to know. A withdrawn one (its step voided as a mistake) is listed below, struck through."""
    standing = [a for a in progress.alerts if a.withdrawn_on is None]
    return standing[-1] if standing else None


@get(SUPPORT + "/{victim_id:uuid}", guards=[VICTIM_WORKERS])
async def victim_page(
    request: Request[Any, Any, Any], victim_id: FromPath[UUID], actor: access.SignedIn
) -> Template:
    """Contact details (shown here only), consent to contact, feedback per IMPACT stage with
    the versions corrections replaced, and the perpetrator's status and alerts."""
    return await _victim_page(request, actor, victim_id)


@post(SUPPORT + "/{victim_id:uuid}/consent", guards=[VICTIM_WORKERS], status_code=303)
async def record_consent(
    request: Request[Any, Any, Any], victim_id: FromPath[UUID], actor: access.SignedIn
) -> Page:
    """Consent to contact given, refused or withdrawn, dated: ``POST /victims/{id}/consent``."""
    form = await _form(request)
    choice = form.get("choice", "")
    on, date_problem = _date_field(form, "on", "date")
    problems: list[FieldError] = []
    if choice not in CONSENT_CHOICES:
        problems.append(FieldError("required", "choice", "Choose what the victim said."))
    if date_problem:
        problems.append(date_problem)
    status_code = 422
    if not problems:
        assert on.value is not None
        change = schemas.ConsentChange(
            given=choice != "refuse", on=on.value, withdraw=choice == "withdraw"
        )
        try:
            await services.change_consent(victim_id, change, actor, today())
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            problems, status_code = _problems(error, "on"), error.status_code
        else:
            _notify(request, f"{CONSENT_CHOICES[choice]} on {on.value:%-d %B %Y}")
            return Redirect(_victim_path(victim_id), status_code=303)
    return await _victim_page(
        request,
        actor,
        victim_id,
        status_code=status_code,
        errors=problems,
        consent={"choice": choice, "on": on},
    )


@post(SUPPORT + "/{victim_id:uuid}/feedback", guards=[VICTIM_WORKERS], status_code=303)
async def record_feedback(
    request: Request[Any, Any, Any], victim_id: FromPath[UUID], actor: access.SignedIn
) -> Page:
    """Feedback at one IMPACT stage: ``POST /victims/{id}/feedback``. A stage recorded again
    is a correction; the version it replaces stays, shown with the reason given."""
    form = await _form(request)
    entered: dict[str, Any] = {
        name: form.get(name, "").strip()
        for name in ("stage", "behaviour", "feels_safer", "note", "reason")
    }
    collected_on, date_problem = _date_field(form, "collected_on", "date of the feedback")
    entered["collected_on"] = collected_on
    problems: list[FieldError] = []
    if entered["stage"] not in {s.value for s in Stage}:
        problems.append(FieldError("required", "stage", "Choose the stage."))
    if date_problem:
        problems.append(date_problem)
    if entered["behaviour"] not in {b.value for b in Behaviour}:
        problems.append(
            FieldError("required", "behaviour", "Choose what the victim says of the behaviour.")
        )
    if entered["feels_safer"] not in {f.value for f in FeelsSafer}:
        problems.append(
            FieldError("required", "feels_safer", "Choose whether the victim feels safer.")
        )
    if len(entered["note"]) > 4000:
        problems.append(FieldError("too_long", "note", "A note is at most 4000 characters."))
    if len(entered["reason"]) > 2000:
        problems.append(FieldError("too_long", "reason", "A reason is at most 2000 characters."))
    status_code = 422
    if not problems:
        assert collected_on.value is not None
        data = schemas.FeedbackCreate(
            stage=Stage(entered["stage"]),
            collected_on=collected_on.value,
            behaviour=Behaviour(entered["behaviour"]),
            feels_safer=FeelsSafer(entered["feels_safer"]),
            note=entered["note"] or None,
            reason=entered["reason"] or None,
        )
        try:
            await services.record_feedback(victim_id, data, actor, today())
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            problems, status_code = _problems(error, "collected_on"), error.status_code
        else:
            _notify(request, f"Feedback recorded: {STAGE_LABELS[Stage(entered['stage'])]}")
            return Redirect(_victim_path(victim_id), status_code=303)
    return await _victim_page(
        request,
        actor,
        victim_id,
        status_code=status_code,
        errors=problems,
        feedback=entered,
    )


PAGES = [victims_page, victim_page, record_consent, record_feedback]
