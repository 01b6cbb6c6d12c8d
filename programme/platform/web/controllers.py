"""The platform's own pages: sign in and out, home, one's own password, first-run set-up.

Each form is a plain POST answered by a redirect (or the form again, with every
problem listed), so nothing needs JavaScript. Handlers read the form
themselves: a form's fields are text, and a missing one is an empty string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from programme.platform.accounts import access
from programme.platform.accounts import services as accounts
from programme.platform.accounts.passwords import MIN_PASSWORD_LENGTH
from programme.platform.errors import FieldError, InvalidInput, NotAuthenticated, NotFound
from programme.platform.web import browser, services

Page = Template | Redirect

MAX_FIELD_LENGTH = 2048
"""Longer form values are cut: no field of these forms is anywhere near it."""


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {
        key: value[:MAX_FIELD_LENGTH]
        for key, value in form.items()
        if isinstance(value, str) and key != "_csrf_token"
    }


SIGNED_OUT = "You have signed out."
SESSION_ENDED = "You were signed out because you had not done anything for a while."


@get(browser.SIGN_IN_PATH, opt={access.PUBLIC: True})
async def sign_in_page(
    request: Request[Any, Any, Any],
    signed_out: FromQuery[bool] = False,
    ended: FromQuery[bool] = False,
) -> Page:
    """The sign-in form; someone already signed in goes home."""
    if browser.signed_in_person(request) is not None:
        return Redirect(browser.HOME_PATH, status_code=303)
    notice = SIGNED_OUT if signed_out else SESSION_ENDED if ended else None
    return browser.page(request, "sign_in.html", title="Sign in", notice=notice, username="")


@post(browser.SIGN_IN_PATH, opt={access.PUBLIC: True}, status_code=303)
async def sign_in(request: Request[Any, Any, Any], state: State) -> Page:
    """Check the password as ``POST /auth/login`` does (throttled too), then open a session."""
    form = await _form(request)
    username, password = form.get("username", "").strip(), form.get("password", "")
    problems = []
    if not username:
        problems.append(FieldError("required", "username", "Enter your username."))
    if not password:
        problems.append(FieldError("required", "password", "Enter your password."))
    if not problems:
        address = access.client_address(request, state.settings)
        try:
            principal = await accounts.authenticate(
                username, password, address, state.settings, state.refusals
            )
        except NotAuthenticated:
            problems.append(
                FieldError("not_signed_in", "username", "The username or password is not right.")
            )
        else:
            await browser.start_session(request, principal)
            return Redirect(browser.HOME_PATH, status_code=303)
    return browser.page(
        request,
        "sign_in.html",
        status_code=422 if any(p.code == "required" for p in problems) else 401,
        title="Sign in",
        errors=problems,
        username=username,
    )


@post(
    "/sign-out",
    guards=[access.requires(*access.EVERY_ROLE)],
    opt={access.BEFORE_NEW_PASSWORD: True},
    status_code=303,
)
async def sign_out(request: Request[Any, Any, Any]) -> Redirect:
    browser.end_session(request)
    return Redirect(browser.SIGN_IN_PATH + "?signed_out=1", status_code=303)


@get(
    browser.HOME_PATH,
    guards=[access.requires(*access.EVERY_ROLE)],
    opt={browser.NAV: "Home", "nav_order": 0},
)
async def home(request: Request[Any, Any, Any]) -> Template:
    """What the signed-in person can do: only the pages their role may open."""
    return browser.page(request, "home.html", title="Home")


PASSWORD_PATH = browser.PASSWORD_PATH


@get(
    PASSWORD_PATH,
    guards=[access.requires(*access.EVERY_ROLE)],
    opt={browser.NAV: "Change password", "nav_order": 90, access.BEFORE_NEW_PASSWORD: True},
)
async def password_page(
    request: Request[Any, Any, Any],
    changed: FromQuery[bool] = False,
    reset: FromQuery[bool] = False,
) -> Template:
    """One's own password; after an admin's reset, the only page open until it is changed."""
    actor = browser.signed_in_person(request)
    return browser.page(
        request,
        "password.html",
        title="Change your password",
        changed=changed,
        must_change=bool(actor and actor.reset_pending),
        min_length=MIN_PASSWORD_LENGTH,
    )


@post(
    PASSWORD_PATH,
    guards=[access.requires(*access.EVERY_ROLE)],
    opt={access.BEFORE_NEW_PASSWORD: True},
    status_code=303,
)
async def change_password(
    request: Request[Any, Any, Any], actor: access.SignedIn, state: State
) -> Page:
    """Change one's own password; this session carries on and every other one ends."""
    form = await _form(request)
    try:
        await services.change_password(
            actor,
            form.get("current", ""),
            form.get("new", ""),
            form.get("new_again", ""),
            access.client_address(request, state.settings),
            state.settings,
            state.refusals,
        )
    except InvalidInput as problems:
        return browser.page(
            request,
            "password.html",
            status_code=422,
            title="Change your password",
            errors=problems.errors,
            must_change=actor.reset_pending,
            min_length=MIN_PASSWORD_LENGTH,
        )
    await browser.refresh_session(request, actor)
    return Redirect(PASSWORD_PATH + "?changed=1", status_code=303)


SET_UP_PATH = "/set-up/{token:str}"


@get(SET_UP_PATH, opt={access.PUBLIC: True})
async def set_up_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    """The first-run page: only by the link ``inspire serve`` printed, while no account exists."""
    if not await services.setup_link_works(token, datetime.now(UTC)):
        raise NotFound(services.LINK_DEAD)
    return browser.page(
        request,
        "set_up.html",
        title="Set up the first administrator",
        username="",
        min_length=MIN_PASSWORD_LENGTH,
    )


@post(SET_UP_PATH, opt={access.PUBLIC: True}, status_code=303)
async def set_up(request: Request[Any, Any, Any], token: FromPath[str]) -> Page:
    form = await _form(request)
    username = form.get("username", "").strip()
    try:
        principal = await services.first_admin(
            token,
            username,
            form.get("password", ""),
            form.get("password_again", ""),
            datetime.now(UTC),
        )
    except InvalidInput as problems:
        return browser.page(
            request,
            "set_up.html",
            status_code=422,
            title="Set up the first administrator",
            errors=problems.errors,
            username=username,
            min_length=MIN_PASSWORD_LENGTH,
        )
    await browser.start_session(request, principal)
    return Redirect(browser.HOME_PATH, status_code=303)


PAGES = [sign_in_page, sign_in, sign_out, home, password_page, change_password, set_up_page, set_up]
