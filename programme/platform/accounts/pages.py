"""The admins' web pages for accounts and agencies.

Each calls the service its API route calls (``accounts.services``): adding an
account, deactivating and reactivating it, changing its role, resetting its
password, lifting a sign-in delay, adding an agency. Admins only. An account
added here gets a temporary password, shown once to the admin (in the session,
never in an address), which its owner must replace at the first sign-in; a
reset does the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from programme.platform.accounts import access, services
from programme.platform.accounts.schemas import AccountChange, AccountCreate, Principal
from programme.platform.errors import ApplicationError, FieldError
from programme.platform.http_inputs import Offset
from programme.platform.paging import MAX_LIMIT, Paging
from programme.platform.tables import Role
from programme.platform.web import browser

TEMPLATES = Path(__file__).resolve().parent / "templates"

Page = Template | Redirect

ADMINS = access.requires(Role.admin)

ACCOUNTS = "/admin/accounts"
AGENCIES = "/admin/agencies"
PAGE_SIZE = 50
MAX_FIELD_LENGTH = 1024

NOTICE = "admin_notice"
"""Session key of a one-off message for the next page: a temporary password goes here."""

ROLE_LABELS = {
    Role.referrer: "Referrer",
    Role.facilitator: "Facilitator",
    Role.victim_worker: "Victim worker",
    Role.monitor: "Contract monitor",
    Role.admin: "Admin",
}
ROLE_HINTS = {
    Role.referrer: "Police, social care, health, probation: makes referrals; belongs to an agency.",
    Role.facilitator: "Programme staff: contact, groups, the register.",
    Role.victim_worker: "Partner support: the only role that sees victims' details.",
    Role.monitor: "Council or commissioner: reports, no names.",
    Role.admin: "Accounts, agencies, settings, the audit trail.",
}


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {
        key: value[:MAX_FIELD_LENGTH]
        for key, value in form.items()
        if isinstance(value, str) and key != "_csrf_token"
    }


def _notify(request: Request[Any, Any, Any], notice: dict[str, str]) -> None:
    if isinstance(request.session, dict):
        request.session[NOTICE] = notice


def _notice(request: Request[Any, Any, Any]) -> dict[str, str] | None:
    if isinstance(request.session, dict) and NOTICE in request.session:
        notice: dict[str, str] = request.session.pop(NOTICE)
        return notice
    return None


def _problems(error: ApplicationError) -> list[FieldError]:
    return list(error.errors) or [FieldError(error.code or "conflict", "", error.message)]


async def _agency_names() -> list[str]:
    found = await services.list_agencies(Paging(MAX_LIMIT, 0))
    return [agency.name for agency in found.items]


def _role_problems(role: str, agency: str) -> list[FieldError]:
    problems = []
    if role not in {r.value for r in Role}:
        problems.append(FieldError("required", "role", "Choose a role."))
    elif role == Role.referrer.value and not agency:
        problems.append(FieldError("required", "agency", "A referrer must belong to an agency."))
    return problems


# --- accounts ---


@get(ACCOUNTS, guards=[ADMINS], opt={browser.NAV: "Accounts", "nav_order": 60})
async def accounts_page(
    request: Request[Any, Any, Any], actor: access.SignedIn, offset: Offset = 0
) -> Template:
    """Every account, by username, 50 a page: role, agency, active, a reset waiting."""
    found = await services.list_accounts(actor, Paging(PAGE_SIZE, offset))
    return browser.page(
        request,
        "accounts/accounts.html",
        title="Accounts",
        accounts=found,
        role_labels={r.value: label for r, label in ROLE_LABELS.items()},
        page_size=PAGE_SIZE,
    )


async def _new_page(
    request: Request[Any, Any, Any],
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    entered: dict[str, str] | None = None,
) -> Template:
    return browser.page(
        request,
        "accounts/account_new.html",
        status_code=status_code,
        title="Add an account",
        errors=errors or [],
        entered=entered or {"username": "", "role": "", "agency": ""},
        roles=[(r.value, ROLE_LABELS[r], ROLE_HINTS[r]) for r in ROLE_LABELS],
        agencies=await _agency_names(),
    )


@get(ACCOUNTS + "/new", guards=[ADMINS])
async def new_account_page(request: Request[Any, Any, Any]) -> Template:
    return await _new_page(request)


@post(ACCOUNTS + "/new", guards=[ADMINS], status_code=303)
async def add_account(request: Request[Any, Any, Any], actor: access.SignedIn) -> Page:
    """``POST /accounts`` with a temporary password its owner replaces at the first sign-in."""
    form = await _form(request)
    entered = {name: form.get(name, "").strip() for name in ("username", "role", "agency")}
    problems = []
    if not entered["username"]:
        problems.append(FieldError("required", "username", "Enter a username."))
    problems += _role_problems(entered["role"], entered["agency"])
    status_code = 422
    if not problems:
        temporary = services.temporary_password()
        try:
            data = msgspec.convert(
                {
                    "username": entered["username"],
                    "password": temporary,
                    "role": entered["role"],
                    "agency": entered["agency"] or None,
                },
                AccountCreate,
            )
            account = await services.create_account(data, actor, temporary=True)
        except msgspec.ValidationError:
            problems.append(FieldError("invalid", "username", "Use at most 100 characters."))
        except ApplicationError as error:
            if error.status_code not in (409, 422):
                raise
            problems = [
                FieldError(p.code, p.field or "username", p.message) for p in _problems(error)
            ]
            status_code = error.status_code
        else:
            _notify(
                request,
                {
                    "heading": f"Account {account.username} added",
                    "password": temporary,
                },
            )
            return Redirect(f"{ACCOUNTS}/{account.id}", status_code=303)
    return await _new_page(request, status_code=status_code, errors=problems, entered=entered)


async def _account_page(
    request: Request[Any, Any, Any],
    actor: Principal,
    account_id: UUID,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    entered: dict[str, str] | None = None,
) -> Template:
    account = await services.get_account_for_admin(account_id, actor)
    return browser.page(
        request,
        "accounts/account.html",
        status_code=status_code,
        title=f"Account {account.username}",
        errors=errors or [],
        account=account,
        lockout=await services.lockout(account_id, datetime.now(UTC)),
        is_self=account.id == actor.id,
        roles=[(r.value, ROLE_LABELS[r], ROLE_HINTS[r]) for r in ROLE_LABELS],
        role_labels={r.value: label for r, label in ROLE_LABELS.items()},
        agencies=await _agency_names(),
        entered=entered or {"role": account.role, "agency": account.agency or ""},
        notice=_notice(request),
    )


def _account_path(account_id: UUID) -> str:
    return f"{ACCOUNTS}/{account_id}"


@get(ACCOUNTS + "/{account_id:uuid}", guards=[ADMINS])
async def account_page(
    request: Request[Any, Any, Any], account_id: FromPath[UUID], actor: access.SignedIn
) -> Template:
    """One account: change its role, reset its password, lift a sign-in delay, deactivate
    or reactivate it."""
    return await _account_page(request, actor, account_id)


async def _act(
    request: Request[Any, Any, Any],
    actor: Principal,
    account_id: UUID,
    work: Any,
    done: str,
) -> Page:
    """Do one change; back to the account with what happened, or with the refusal."""
    try:
        notice = await work()
    except ApplicationError as error:
        if error.status_code not in (409, 422):
            raise
        return await _account_page(
            request, actor, account_id, status_code=error.status_code, errors=_problems(error)
        )
    _notify(request, notice or {"heading": done})
    return Redirect(_account_path(account_id), status_code=303)


@post(ACCOUNTS + "/{account_id:uuid}/deactivate", guards=[ADMINS], status_code=303)
async def deactivate(
    request: Request[Any, Any, Any], account_id: FromPath[UUID], actor: access.SignedIn
) -> Page:
    """``POST /accounts/{id}/deactivate``: their sessions and tokens stop at once."""

    async def work() -> None:
        await services.set_active(account_id, False, actor)

    return await _act(request, actor, account_id, work, "Deactivated: they are signed out")


@post(ACCOUNTS + "/{account_id:uuid}/reactivate", guards=[ADMINS], status_code=303)
async def reactivate(
    request: Request[Any, Any, Any], account_id: FromPath[UUID], actor: access.SignedIn
) -> Page:
    async def work() -> None:
        await services.set_active(account_id, True, actor)

    return await _act(request, actor, account_id, work, "Reactivated: they may sign in again")


@post(ACCOUNTS + "/{account_id:uuid}/role", guards=[ADMINS], status_code=303)
async def change_role(
    request: Request[Any, Any, Any], account_id: FromPath[UUID], actor: access.SignedIn
) -> Page:
    """``PATCH /accounts/{id}``: a new role (a referrer's agency); they sign in again."""
    form = await _form(request)
    entered = {name: form.get(name, "").strip() for name in ("role", "agency")}
    problems = _role_problems(entered["role"], entered["agency"])
    if problems:
        return await _account_page(
            request, actor, account_id, status_code=422, errors=problems, entered=entered
        )
    change = AccountChange(role=Role(entered["role"]), agency=entered["agency"] or None)

    async def work() -> None:
        await services.change_role(account_id, change, actor)

    label = ROLE_LABELS[Role(entered["role"])]
    return await _act(request, actor, account_id, work, f"Role changed to {label.lower()}")


@post(ACCOUNTS + "/{account_id:uuid}/reset-password", guards=[ADMINS], status_code=303)
async def reset_password(
    request: Request[Any, Any, Any], account_id: FromPath[UUID], actor: access.SignedIn
) -> Page:
    """``POST /accounts/{id}/reset-password``: a temporary password, shown once."""

    async def work() -> dict[str, str]:
        reset = await services.reset_password(account_id, actor)
        return {"heading": "Password reset", "password": reset.temporary_password}

    return await _act(request, actor, account_id, work, "Password reset")


@post(ACCOUNTS + "/{account_id:uuid}/unlock", guards=[ADMINS], status_code=303)
async def unlock(
    request: Request[Any, Any, Any],
    account_id: FromPath[UUID],
    actor: access.SignedIn,
    state: State,
) -> Page:
    """``POST /accounts/{id}/unlock``: the username's sign-in delay lifted."""

    async def work() -> None:
        await services.unlock(account_id, actor, state.refusals)

    return await _act(request, actor, account_id, work, "Sign-in delay lifted")


# --- agencies ---


async def _agencies_page(
    request: Request[Any, Any, Any],
    offset: int = 0,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    name: str = "",
) -> Template:
    found = await services.list_agencies(Paging(PAGE_SIZE, offset))
    return browser.page(
        request,
        "accounts/agencies.html",
        status_code=status_code,
        title="Agencies",
        errors=errors or [],
        agencies=found,
        name=name,
        page_size=PAGE_SIZE,
        notice=_notice(request),
    )


@get(AGENCIES, guards=[ADMINS], opt={browser.NAV: "Agencies", "nav_order": 65})
async def agencies_page(request: Request[Any, Any, Any], offset: Offset = 0) -> Template:
    """The referring agencies, by name, and a form to add one (``POST /agencies``)."""
    return await _agencies_page(request, offset)


@post(AGENCIES, guards=[ADMINS], status_code=303)
async def add_agency(request: Request[Any, Any, Any], actor: access.SignedIn) -> Page:
    name = " ".join((await _form(request)).get("name", "").split())
    problems = []
    if not name:
        problems.append(FieldError("required", "name", "Enter the agency's name."))
    elif len(name) > 200:
        problems.append(FieldError("too_long", "name", "Use at most 200 characters."))
    if not problems:
        try:
            agency = await services.create_agency(name, actor)
        except ApplicationError as error:
            if error.status_code != 409:
                raise
            problems = [FieldError("exists", "name", "An agency with this name exists already.")]
        else:
            _notify(request, {"heading": f"Agency added: {agency.name}"})
            return Redirect(AGENCIES, status_code=303)
    return await _agencies_page(request, status_code=422, errors=problems, name=name)


PAGES = [
    accounts_page,
    new_account_page,
    add_account,
    account_page,
    deactivate,
    reactivate,
    change_role,
    reset_password,
    unlock,
    agencies_page,
    add_agency,
]
