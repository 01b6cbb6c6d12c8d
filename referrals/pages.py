"""The referrers' web pages: make a referral, step by step, and follow the agency's referrals.

A page decides nothing itself. Each step of the form is checked by
``rules.check`` (the intake checks ``POST /referrals`` runs), the quality panel
comes from ``rules.draft_quality`` (the logic of the referral-quality figures),
and sending calls ``services.submit_referral``, as the API does: a refused
referral is returned there, keeping nothing about the person.

The answers between steps are kept in the server-side session (never in an
address), in the shape the API takes, and dropped once the referral is sent,
refused or started again. Every form works without JavaScript; htmx only
re-checks a step as the person types (``POST .../live``), swapping the list of
problems and the quality panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from programme.platform.accounts import access
from programme.platform.clock import today
from programme.platform.crypto import KeyPurpose, purpose_key
from programme.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from programme.platform.http_inputs import Offset
from programme.platform.paging import Paging
from programme.platform.tables import Role
from programme.platform.validation import DATE, REQUIRED
from programme.platform.web import browser
from referrals import rules, services
from referrals.schemas import ReferralSearch, ReferralStatusView
from referrals.services import OutcomesHooks

TEMPLATES = Path(__file__).resolve().parent / "templates"

START_PATH = "/make-a-referral"
CHECK_PATH = START_PATH + "/check"
SENT_PATH = START_PATH + "/sent"
RETURNED_PATH = START_PATH + "/returned"
OURS_PATH = "/our-referrals"

DRAFT = "referral_draft"
"""Session key of the referral being written: ``answers`` (the API's fields), ``typed``
(date parts as typed, to show them again) and ``seen`` (the steps saved so far)."""
SENT = "referral_sent"
RETURNED = "referral_returned"

MAX_FIELD_LENGTH = rules.MAX_NOTES + 1
"""Longer form values are cut (and then refused by the rules as too long)."""

PAGE_SIZE = 20

REFERRERS = access.requires(Role.referrer)


@dataclass(frozen=True)
class Step:
    slug: str
    title: str
    fields: tuple[str, ...]
    dates: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"{START_PATH}/{self.slug}"


STEPS = (
    Step(
        "consent",
        "Consent",
        ("consent_given", "consent_obtained_on", "consent_method"),
        dates=("consent_obtained_on",),
    ),
    Step(
        "person",
        "The person",
        ("first_name", "last_name", "date_of_birth", "gender", "phone", "local_authority"),
        dates=("date_of_birth",),
    ),
    Step(
        "relationship",
        "Relationship and risk",
        (
            "relationship",
            "risk_level",
            "prior_incidents",
            "substance_misuse",
            "mental_health",
            "children_in_household",
            "on_probation_programme",
        ),
    ),
    Step("victims", "Victims", ("victims",)),
    Step("notes", "Notes", ("reference", "notes")),
)
STEP_OF = {step.slug: step for step in STEPS}
FIELD_STEP = {name: step for step in STEPS for name in step.fields}

VICTIM_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "relationship",
    "consent_to_contact",
    "consent_obtained_on",
)
NOT_KNOWN = "not_known"
"""The answer 'not known' to an optional question: the same as leaving it out."""

QUALITY_LABELS = {
    "risk_level": ("DASH risk level", "relationship"),
    "prior_incidents": ("Prior incidents", "relationship"),
    "complex_needs": ("Substance misuse, mental health and children", "relationship"),
    "victims": ("A victim who agreed to be contacted", "victims"),
    "notes": ("Notes for the first contact", "notes"),
}
"""How the quality panel names each detail of ``rules.QUALITY_WHY``, and the step it is on."""

QUALITY_STEPS = frozenset({"relationship", "victims", "notes"})
"""The steps that ask for the useful details: the quality panel shows there (and on the check)."""

QUALITY_FIELD = {
    "risk_level": "risk_level",
    "prior_incidents": "prior_incidents",
    "complex_needs": "substance_misuse",
    "victims": "victim_first_name",
    "notes": "notes",
}

WHAT_TO_DO = {
    rules.ReturnReason.consent_missing: "Ask the person whether they agree to be referred. "
    "If they do, make a new referral saying when and how they agreed.",
    rules.ReturnReason.incomplete: "Find the missing details and make a new referral.",
    rules.ReturnReason.no_contact_number: "Find a UK phone number the programme can ring "
    "and make a new referral.",
    rules.ReturnReason.under_16: "The programme is for people aged 16 and over: speak to "
    "children's services instead.",
    rules.ReturnReason.not_domestic_abuse: "The programme is for abuse between partners, "
    "ex-partners or family members only.",
    rules.ReturnReason.on_mandated_programme: "People on a probation programme go to Building "
    "Better Relationships: speak to their probation officer.",
    rules.ReturnReason.out_of_area: "The programme works only in the areas it is commissioned "
    "for: refer the person to the service in their own area.",
}
"""What a referrer can do about each reason a referral is returned."""


LABELS = {
    "partner": "Partner",
    "ex_partner": "Ex-partner",
    "family_member": "Family member",
    "other": "Someone else",
    "standard": "Standard",
    "medium": "Medium",
    "high": "High",
    "male": "Male",
    "female": "Female",
    "unknown": "Not known",
    "verbal": "Spoken (in person or by phone)",
    "written": "In writing",
    "yes": "Yes",
    "no": "No",
    "true": "Yes",
    "false": "No",
}
"""How the form shows the API's values."""

FIELD_LABELS = {
    "consent_given": "Agreed to be referred",
    "consent_obtained_on": "Date they agreed",
    "consent_method": "How they agreed",
    "first_name": "First name",
    "last_name": "Last name",
    "date_of_birth": "Date of birth",
    "gender": "Gender",
    "phone": "Phone number",
    "local_authority": "Area they live in",
    "relationship": "Relationship to the victim",
    "risk_level": "DASH risk level",
    "prior_incidents": "Prior incidents",
    "substance_misuse": "Substance misuse",
    "mental_health": "Mental health needs",
    "children_in_household": "Children in the household",
    "on_probation_programme": "On a probation programme",
    "victims": "Victims",
    "reference": "Your reference",
    "notes": "Notes",
}

STATUS_TAGS = {
    "accepted": "govuk-tag--blue",
    "contacted": "govuk-tag--light-blue",
    "engaged": "govuk-tag--turquoise",
    "started": "govuk-tag--purple",
    "completed": "govuk-tag--green",
    "disengaged": "govuk-tag--orange",
    "withdrawn": "govuk-tag--grey",
    "closed": "govuk-tag--grey",
}


OPTIONAL_ANSWERS = frozenset(
    {"risk_level", "prior_incidents", "substance_misuse", "mental_health", "children_in_household"}
)
"""Questions whose answer may be "not known" (left out, as the API takes them)."""


def long_date(value: Any) -> str:
    """27 March 1985; a date typed wrongly, as it was typed."""
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day.day} {day:%B %Y}"


def _shown(name: str, value: Any) -> str:
    if value is None or value == "":
        if name == "victims":
            return "None named"
        return "Not known" if name in OPTIONAL_ANSWERS else "Not given"
    if name in ("consent_obtained_on", "date_of_birth"):
        return long_date(value)
    if name == "victims":
        return ", ".join(_victim_line(v) for v in value)
    if name in ("notes", "first_name", "last_name", "phone", "reference"):
        return str(value)
    labels = {**LABELS, **GENDER_LABELS} if name == "gender" else LABELS
    return labels.get(str(value).lower(), str(value))


def _victim_line(victim: dict[str, Any]) -> str:
    name = " ".join(str(victim.get(k, "")) for k in ("first_name", "last_name")).strip()
    relationship = LABELS.get(str(victim.get("relationship")), "")
    consent = (
        f"agreed to be contacted on {long_date(victim.get('consent_obtained_on'))}"
        if victim.get("consent_to_contact") is True
        else "did not agree to be contacted"
    )
    return f"{name} ({relationship.lower()}; {consent})"


GENDER_LABELS = {"other": "Other"}


def _options(values: Any, kind: str = "") -> list[tuple[str, str]]:
    """Radio choices: each value with its words (an area's name is its own)."""
    if kind == "area":
        return [(str(v), str(v)) for v in values]
    labels = {**LABELS, **GENDER_LABELS} if kind == "gender" else LABELS
    return [(str(v), labels.get(str(v), str(v))) for v in values]


def _rows(step: Step, answers: dict[str, Any]) -> list[dict[str, str]]:
    """One step's answers as "check your answers" rows, each with its Change link."""
    rows = []
    for name in step.fields:
        anchor = f"{name}-day" if name in step.dates else name
        if name == "victims":
            anchor = "victim_first_name"
        rows.append(
            {
                "key": FIELD_LABELS[name],
                "value": _shown(name, answers.get(name)),
                "href": f"{step.path}#{anchor}",
                "hidden": FIELD_LABELS[name].lower(),
            }
        )
    return rows


# The draft in the session.


def _draft(request: Request[Any, Any, Any]) -> dict[str, Any]:
    draft = request.session.get(DRAFT)
    if not isinstance(draft, dict):
        draft = {"answers": {}, "typed": {}, "seen": []}
    return draft


def _keep(request: Request[Any, Any, Any], draft: dict[str, Any]) -> None:
    request.session[DRAFT] = draft


def _drop(request: Request[Any, Any, Any]) -> None:
    request.session.pop(DRAFT, None)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {
        key: value[:MAX_FIELD_LENGTH].strip()
        for key, value in form.items()
        if isinstance(value, str) and key != "_csrf_token"
    }


def date_answer(day: str, month: str, year: str) -> str | None:
    """Three boxes as the API's ISO date; None if all are empty.

    Anything else that is not a real day is passed on as typed, for the rules
    to refuse with their own message: the page has no date rule of its own.
    """
    if not (day or month or year):
        return None
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return f"{year}-{month}-{day}"


def _read_step(step: Step, form: dict[str, str], draft: dict[str, Any]) -> None:
    """Put one step's answers from its form into the draft."""
    answers: dict[str, Any] = draft["answers"]
    for name in step.fields:
        if name == "victims":
            continue
        if name in step.dates:
            parts = {p: form.get(f"{name}-{p}", "") for p in ("day", "month", "year")}
            draft["typed"][name] = parts
            value = date_answer(parts["day"], parts["month"], parts["year"])
        else:
            value = form.get(name) or None
            if value == NOT_KNOWN:
                value = None
        if value is None:
            answers.pop(name, None)
        else:
            answers[name] = value


def _victim_from(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The victim being added, in the API's shape, and its date parts as typed."""
    raw: dict[str, Any] = {}
    for name in ("first_name", "last_name", "phone", "relationship"):
        if value := form.get(f"victim_{name}"):
            raw[name] = value
    consent = form.get("victim_consent_to_contact")
    if consent in ("yes", "no"):
        raw["consent_to_contact"] = consent == "yes"
    parts = {p: form.get(f"victim_consent_obtained_on-{p}", "") for p in ("day", "month", "year")}
    if on := date_answer(parts["day"], parts["month"], parts["year"]):
        raw["consent_obtained_on"] = on
    return raw, parts


def _victim_problems(raw: dict[str, Any]) -> list[FieldError]:
    """The API's check of one victim; fields named as the form names them."""
    _, problems = rules.check_victim(raw, "victim", today=today())
    return [FieldError(p.code, p.field.replace("victim.", "victim_"), p.message) for p in problems]


def _field_of(error: FieldError) -> str:
    """``victims[0].phone`` -> ``victims``: the answer a problem is about."""
    return error.field.split("[", 1)[0].split(".", 1)[0]


FIELD_ORDER = {name: i for i, name in enumerate(name for s in STEPS for name in s.fields)}


def _all_problems(answers: dict[str, Any], settings: Any) -> list[FieldError]:
    """Every problem the intake checks find, in the order the form asks its questions."""
    checked = rules.check(answers, today=today(), commissioned_areas=settings.commissioned_areas)
    return sorted(checked.errors, key=lambda e: FIELD_ORDER.get(_field_of(e), len(FIELD_ORDER)))


def _step_problems(step: Step, answers: dict[str, Any], settings: Any) -> list[FieldError]:
    """The intake checks on the whole referral, kept to the answers of one step."""
    return [e for e in _all_problems(answers, settings) if _field_of(e) in step.fields]


def _error_links(step: Step) -> dict[str, str]:
    """A date's problem links to its day box, as the GOV.UK error summary does."""
    links = {name: f"#{name}-day" for name in step.dates}
    if step.slug == "victims":
        links["victim_consent_obtained_on"] = "#victim_consent_obtained_on-day"
    return links


DATE_IN_BOXES = "Enter a real date: the day, month and year as numbers, such as 27 3 1985."


REQUIRED_WORDING = {
    "consent_given": "Say whether they agreed to be referred",
    "consent_obtained_on": "Enter the date they agreed to be referred",
    "consent_method": "Say how they agreed to be referred",
    "first_name": "Enter their first name",
    "last_name": "Enter their last name",
    "date_of_birth": "Enter their date of birth",
    "gender": "Select their gender",
    "local_authority": "Select the area they live in",
    "relationship": "Select their relationship to the victim",
    "on_probation_programme": "Say whether they are on a probation programme",
    "victim_first_name": "Enter the victim's first name",
    "victim_relationship": "Select the victim's relationship to the person referred",
    "victim_consent_to_contact": "Say whether the victim agreed to be contacted",
}
"""The API's "required", said for each question as the GOV.UK error messages are."""


def _worded(errors: list[FieldError]) -> list[FieldError]:
    """The rules' problems in the form's words: which answer is missing, dates as three boxes.

    Only the wording changes: which answers are missing or wrong is the rules' call.
    """
    worded = []
    for e in errors:
        message = e.message
        if message == DATE:
            message = DATE_IN_BOXES
        elif message == REQUIRED and e.field in REQUIRED_WORDING:
            message = REQUIRED_WORDING[e.field]
        worded.append(FieldError(e.code, e.field, message))
    return worded


def _check_links(errors: list[FieldError]) -> dict[str, str]:
    """On "check your answers", each problem links to its field on its own step."""
    links = {}
    for e in errors:
        step = FIELD_STEP.get(_field_of(e))
        if step is not None:
            anchor = f"{e.field}-day" if e.field in step.dates else _field_of(e)
            links[e.field] = f"{step.path}#{anchor}"
    return links


def _quality(answers: dict[str, Any]) -> list[dict[str, str]]:
    quality = rules.draft_quality(answers)
    return [
        {
            "label": QUALITY_LABELS[m.field][0],
            "why": m.why,
            "href": f"{STEP_OF[QUALITY_LABELS[m.field][1]].path}#{QUALITY_FIELD[m.field]}",
        }
        for m in quality.missing
    ]


def _next_path(step: Step, draft: dict[str, Any]) -> str:
    """The next step; once every step has been saved, "check your answers"."""
    if all(s.slug in draft["seen"] for s in STEPS):
        return CHECK_PATH
    index = STEPS.index(step)
    return STEPS[index + 1].path if index + 1 < len(STEPS) else CHECK_PATH


def _step_page(
    request: Request[Any, Any, Any],
    step: Step,
    draft: dict[str, Any],
    *,
    errors: list[FieldError] | None = None,
    status_code: int = 200,
    victim: dict[str, Any] | None = None,
) -> Template:
    settings = request.app.state.settings
    index = STEPS.index(step)
    return browser.page(
        request,
        f"referral_{step.slug}.html",
        status_code=status_code,
        title=step.title,
        errors=_worded(errors or []),
        error_links=_error_links(step),
        step=step,
        step_number=index + 1,
        step_count=len(STEPS),
        back=STEPS[index - 1].path if index else START_PATH,
        answers=draft["answers"],
        typed=draft["typed"],
        victim=victim or {"raw": {}, "typed": {}},
        quality=_quality(draft["answers"]) if step.slug in QUALITY_STEPS else None,
        skip_to=_next_path(step, draft) if errors else None,
        areas=settings.commissioned_areas,
        relationships=rules.OFFERED_RELATIONSHIPS,
        victim_relationships=rules.RELATIONSHIPS,
        risk_levels=[r.value for r in rules.RiskLevel],
        genders=[g.value for g in rules.Gender],
        consent_methods=[m.value for m in rules.ConsentMethod],
        max_notes=rules.MAX_NOTES,
        options=_options,
        victim_line=_victim_line,
    )


def _step(slug: str) -> Step:
    step = STEP_OF.get(slug)
    if step is None:
        raise NotFound("No such page.")
    return step


Page = Template | Redirect


@get(START_PATH, guards=[REFERRERS], opt={browser.NAV: "Make a referral", "nav_order": 10})
async def start_page(request: Request[Any, Any, Any]) -> Template:
    """What a referral needs, and the way in; a referral half written can be carried on."""
    draft = request.session.get(DRAFT)
    carry_on = None
    if isinstance(draft, dict) and draft.get("seen"):
        unseen = [s for s in STEPS if s.slug not in draft["seen"]]
        carry_on = unseen[0].path if unseen else CHECK_PATH
    return browser.page(
        request,
        "referral_start.html",
        title="Make a referral",
        carry_on=carry_on,
        first=STEPS[0].path,
        areas=request.app.state.settings.commissioned_areas,
    )


@post(START_PATH + "/start-again", guards=[REFERRERS], status_code=303)
async def start_again(request: Request[Any, Any, Any]) -> Redirect:
    """Forget the referral being written (its answers leave the session)."""
    _drop(request)
    return Redirect(STEPS[0].path, status_code=303)


@get(START_PATH + "/{slug:str}", guards=[REFERRERS])
async def step_page(request: Request[Any, Any, Any], slug: FromPath[str]) -> Template:
    """One step of the form with the answers so far; a step saved before shows its problems."""
    step = _step(slug)
    draft = _draft(request)
    errors = (
        _step_problems(step, draft["answers"], request.app.state.settings)
        if step.slug in draft["seen"]
        else []
    )
    return _step_page(request, step, draft, errors=errors)


@post(START_PATH + "/{slug:str}", guards=[REFERRERS], status_code=303)
async def save_step(request: Request[Any, Any, Any], slug: FromPath[str]) -> Page:
    """Save a step's answers and check them; with no problem, on to the next step.

    With problems, the step again, listing every one (its answers are kept,
    and it can be left for now: "check your answers" lists what is still wrong).
    """
    step = _step(slug)
    form = await _form(request)
    draft = _draft(request)
    victim: dict[str, Any] | None = None
    errors: list[FieldError] = []
    if step.slug == "victims":
        victims: list[dict[str, Any]] = list(draft["answers"].get("victims") or [])
        action = form.get("action", "continue")
        if action.startswith("remove-"):
            which = action.removeprefix("remove-")
            if which.isdigit() and int(which) < len(victims):
                victims.pop(int(which))
        else:
            raw, parts = _victim_from(form)
            if raw or action == "add":
                errors = _victim_problems(raw)
                if errors:
                    victim = {"raw": raw, "typed": parts}
                else:
                    victims.append(raw)
        if victims:
            draft["answers"]["victims"] = victims
        else:
            draft["answers"].pop("victims", None)
        if action != "continue" and not errors:  # added or removed one: the list again
            _keep(request, draft)
            return Redirect(step.path, status_code=303)
    else:
        _read_step(step, form, draft)
    if step.slug not in draft["seen"]:
        draft["seen"].append(step.slug)
    _keep(request, draft)
    errors = errors or _step_problems(step, draft["answers"], request.app.state.settings)
    if errors:
        return _step_page(request, step, draft, errors=errors, status_code=422, victim=victim)
    return Redirect(_next_path(step, draft), status_code=303)


@post(
    START_PATH + "/{slug:str}/live",
    guards=[REFERRERS],
    status_code=200,
    opt={browser.READS_SESSION_ONLY: True},
)
async def live_check(request: Request[Any, Any, Any], slug: FromPath[str]) -> Template:
    """htmx, as the person types: the step's problems so far and the quality panel.

    Nothing is saved. Only the answers already given are checked (a box not
    yet reached is not yet a problem); "Continue" checks them all.
    """
    step = _step(slug)
    form = await _form(request)
    draft = _draft(request)
    trial: dict[str, Any] = {"answers": dict(draft["answers"]), "typed": {}, "seen": []}
    errors: list[FieldError] = []
    if step.slug == "victims":
        raw, _ = _victim_from(form)
        if raw:
            errors = [e for e in _victim_problems(raw) if e.field[7:] in raw]
            if not errors and raw.get("consent_to_contact") is True:
                trial["answers"]["victims"] = [*trial["answers"].get("victims", []), raw]
    else:
        _read_step(step, form, trial)
        errors = [
            e
            for e in _step_problems(step, trial["answers"], request.app.state.settings)
            if _field_of(e) in trial["answers"]
        ]
    return browser.page(
        request,
        "referral_live.html",
        live_errors=_worded(errors),
        error_links=_error_links(step),
        quality=_quality(trial["answers"]) if step.slug in QUALITY_STEPS else None,
    )


@get(CHECK_PATH, guards=[REFERRERS])
async def check_page(request: Request[Any, Any, Any]) -> Template:
    """Every answer with a way to change it, and every problem the intake checks find."""
    draft = _draft(request)
    errors = _all_problems(draft["answers"], request.app.state.settings)
    return _check_page(request, draft, errors)


def _check_page(
    request: Request[Any, Any, Any],
    draft: dict[str, Any],
    errors: list[FieldError],
    *,
    status_code: int = 200,
) -> Template:
    return browser.page(
        request,
        "referral_check.html",
        status_code=status_code,
        title="Check your answers before sending the referral",
        errors=_worded(errors),
        error_links=_check_links(errors),
        sections=[{"step": s, "rows": _rows(s, draft["answers"])} for s in STEPS],
        quality=_quality(draft["answers"]),
        back=STEPS[-1].path,
    )


@post(CHECK_PATH, guards=[REFERRERS], status_code=303)
async def send(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    state: State,
    outcomes: NamedDependency[OutcomesHooks],
) -> Page:
    """Send the referral as ``POST /referrals`` does: accepted, or returned with every reason."""
    draft = _draft(request)
    if not draft["answers"]:
        return Redirect(START_PATH, status_code=303)
    try:
        accepted = await services.submit_referral(
            dict(draft["answers"]), actor, state.settings, today(), outcomes
        )
    except InvalidInput as refused:
        reasons = refused.extra.get("reasons")
        if not reasons:  # not returned (nothing recorded): put right and send again
            return _check_page(request, draft, refused.errors, status_code=422)
        _drop(request)
        request.session[RETURNED] = {
            "reasons": [str(r) for r in reasons],
            "problems": [e.message for e in refused.errors],
        }
        return Redirect(RETURNED_PATH, status_code=303)
    except Conflict as conflict:
        return _check_page(
            request,
            draft,
            conflict.errors or [FieldError("conflict", "", conflict.message)],
            status_code=409,
        )
    _drop(request)
    request.session[SENT] = {
        "reference": accepted.reference,
        "missing": [m.why for m in accepted.quality.missing],
        "victims": accepted.victims_recorded,
    }
    return Redirect(SENT_PATH, status_code=303)


@get(SENT_PATH, guards=[REFERRERS])
async def sent_page(request: Request[Any, Any, Any]) -> Page:
    """The reference of the referral just sent, and what happens next."""
    sent = request.session.get(SENT)
    if not isinstance(sent, dict):
        return Redirect(OURS_PATH, status_code=303)
    return browser.page(request, "referral_sent.html", title="Referral sent", sent=sent)


@get(RETURNED_PATH, guards=[REFERRERS])
async def returned_page(request: Request[Any, Any, Any]) -> Page:
    """A refused referral: which checks failed and what to do; nothing about the person."""
    returned = request.session.get(RETURNED)
    if not isinstance(returned, dict):
        return Redirect(START_PATH, status_code=303)
    reasons = [rules.ReturnReason(r) for r in returned["reasons"]]
    return browser.page(
        request,
        "referral_returned.html",
        title="The referral was not accepted",
        problems=returned["problems"],
        advice=[WHAT_TO_DO[r] for r in reasons],
    )


# Our referrals.


@get(OURS_PATH, guards=[REFERRERS], opt={browser.NAV: "Our referrals", "nav_order": 11})
async def our_referrals(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    state: State,
    offset: Offset = 0,
) -> Template:
    """The agency's referrals, newest first, with status and dated steps, a page at a time."""
    secret = purpose_key(state.settings, KeyPurpose.pseudonym)
    found = await services.list_referrals(
        actor, services.ReferralFilters(), PAGE_SIZE, offset, secret
    )
    return _ours_page(request, found, offset=offset)


@post(OURS_PATH, guards=[REFERRERS], status_code=200)
async def search_ours(
    request: Request[Any, Any, Any],
    actor: access.SignedIn,
    state: State,
    outcomes: NamedDependency[OutcomesHooks],
) -> Template:
    """Find one of the agency's referrals by its reference (sent in the form, not the address)."""
    form = await _form(request)
    reference = form.get("reference", "")[:40]
    secret = purpose_key(state.settings, KeyPurpose.pseudonym)
    try:
        found = await services.search_referrals(
            actor, ReferralSearch(reference=reference), Paging(PAGE_SIZE, 0), secret,
            outcomes,
        )  # fmt: skip
    except InvalidInput as problems:
        errors = [FieldError(e.code, "reference", e.message) for e in problems.errors]
        return browser.page(
            request,
            "our_referrals.html",
            status_code=422,
            title="Our referrals",
            errors=errors,
            referrals=[],
            searched=reference,
            pages=None,
        )
    return _ours_page(request, found, searched=reference)


def _ours_page(
    request: Request[Any, Any, Any],
    found: Any,
    *,
    offset: int = 0,
    searched: str | None = None,
) -> Template:
    referrals = [r for r in found.items if isinstance(r, ReferralStatusView)]
    pages = None
    if searched is None and found.total > PAGE_SIZE:
        pages = {
            "previous": f"{OURS_PATH}?offset={max(offset - PAGE_SIZE, 0)}" if offset else None,
            "next": f"{OURS_PATH}?offset={offset + PAGE_SIZE}"
            if offset + PAGE_SIZE < found.total
            else None,
            "first": offset + 1,
            "last": min(offset + PAGE_SIZE, found.total),
            "total": found.total,
        }
    return browser.page(
        request,
        "our_referrals.html",
        title="Our referrals",
        referrals=referrals,
        total=found.total,
        searched=searched,
        pages=pages,
        long_date=long_date,
        status_tags=STATUS_TAGS,
    )


PAGES = [
    start_page,
    start_again,
    check_page,
    send,
    sent_page,
    returned_page,
    step_page,
    save_step,
    live_check,
    our_referrals,
    search_ours,
]
"""The referrers' pages, for ``programme.app`` to add to the pages router."""
