"""What every web page shares: the session, CSRF, the signed-in person, headers, templates.

The pages are one Litestar ``Router`` (``pages_router``) whose ``opt`` says
``access.NO_BEARER`` (the API's bearer-token check skips it) and ``PAGE`` (errors
render as HTML). Only on that router:

- a server-side session (``ServerSideSessionConfig``): an HttpOnly, SameSite=Lax
  cookie holding a random id, Secure when ``INSPIRE_SECURE_COOKIES``; the data in
  a ``FileStore`` in the data directory, shared by every ``--workers`` process,
  ending after ``INSPIRE_SESSION_IDLE_MINUTES`` without a request;
- Litestar's CSRF middleware: every POST needs the form's ``_csrf_token``;
- ``PageAuth``: the session's account becomes the same ``Principal`` the API
  uses, so the same ``access.requires`` guards protect pages, and the app-wide
  ``deny_undeclared`` guard and ``check_every_route_declares_roles`` cover them.

``SecurityHeaders`` wraps the whole app: every answer, page or API, says
``nosniff``, ``no-referrer``, a Content-Security-Policy with no inline script and
``frame-ancestors 'none'``, and ``Cache-Control: no-store`` unless it set its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from litestar import Litestar, Request, Router
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader, MutableScopeHeaders
from litestar.middleware import DefineMiddleware
from litestar.middleware.base import MiddlewareProtocol
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.plugins.htmx import HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.stores.file import FileStore
from litestar.template.config import TemplateConfig
from litestar.types import (
    ASGIApp,
    ControllerRouterHandler,
    Empty,
    Message,
    Receive,
    Scope,
    ScopeSession,
    Send,
)

from programme.platform.accounts import access
from programme.platform.accounts.schemas import Principal
from programme.platform.crypto import derive_key
from programme.platform.errors import FieldError
from programme.platform.settings import Settings
from programme.platform.web import services

PAGE = access.PAGE
"""``opt`` key of every web page: its errors are HTML pages, not the API's JSON."""

NAV = "nav"
"""``opt`` key naming a page in the navigation; shown only to the roles its guards let in."""

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_PATH = "/static"

SESSION_COOKIE = "inspire_session"
CSRF_COOKIE = "inspire_csrf"
SESSION_STORE = "web_sessions"
SIGN_IN_PATH = "/sign-in"
HOME_PATH = "/"
PASSWORD_PATH = "/account/password"  # noqa: S105 (a path)

SERVICE_NAME = "Inspire to Change referrals"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
"""No inline script or style, nothing from another origin, never inside a frame."""

SCHEMA_CONTENT_SECURITY_POLICY = "frame-ancestors 'none'"
"""Swagger UI at ``/schema`` starts itself with an inline script: framing is still refused."""


def csrf_secret(settings: Settings) -> str:
    """Signs the CSRF tokens; derived from the signing key, so changing that key ends them too."""
    return derive_key(settings.token_secret(), b"inspire-web", b"csrf").hex()


def _session_secret(settings: Settings) -> str:
    return derive_key(settings.token_secret(), b"inspire-web", b"session").hex()


READS_SESSION_ONLY = "reads_session_only"
"""``opt`` key of a page that only reads the session: its answer never writes it back.

Litestar writes the whole session back after every request. An htmx check
sent while the person types can still be running when the form's own POST
saves new answers; written back after it, it would put the answers back as
they were when it started. A page marked with this key leaves the stored
session as it finds it.
"""


RENEW_AFTER_SECONDS = 60
"""A session's idle time is pushed back at most once a minute, not on every request.

Renewing is a file write; a page that only reads (the live check while a person
types, the register) would otherwise write the session file on every request.
(Or a tenth of the idle time, if that is shorter.) The cost: a session ends between
``session_idle_seconds`` minus a minute and ``session_idle_seconds`` after its last
request, never later.
"""

_LOADED = "inspire_session_loaded"
"""Scope key: the session's bytes as read at the start of the request."""


class _SessionFiles(FileStore):
    """The session files, renewed only when the last renewal is over a minute old."""

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        if not renew_for:
            return await super().get(key)
        # One read of the file, and a write only when a renewal is due (FileStore.get
        # would write on every call).
        stored = await self._load_from_path(self._path_from_key(key))
        if stored is None:
            return None
        if stored.expired:
            await self.delete(key)
            return None
        seconds = renew_for.total_seconds() if isinstance(renew_for, timedelta) else renew_for
        if stored.expires_at is not None and seconds - stored.expires_in >= min(
            RENEW_AFTER_SECONDS, seconds / 10
        ):
            await self.set(key, stored.data, expires_in=renew_for)
        return stored.data


class _SessionBackend(ServerSideSessionBackend):
    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        if session_id := connection.cookies.get(self.config.key):
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(session_id, store=store)
            if data is not None:
                cast(dict[str, Any], connection.scope)[_LOADED] = data
                return self.deserialize_data(data)
        return {}

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        handler = connection.scope.get("route_handler")
        if (
            scope_session is not Empty
            and handler is not None
            and handler.opt.get(READS_SESSION_ONLY)
        ):
            return
        loaded = cast(dict[str, Any], connection.scope).get(_LOADED)
        if (
            scope_session is not Empty
            and loaded is not None
            and self.serialize_data(scope_session, connection.scope) == loaded
        ):
            # Unchanged: nothing to write (its idle time was renewed, if due, on reading).
            return
        await super().store_in_message(scope_session, message, connection)


class _SessionConfig(ServerSideSessionConfig):
    _backend_class = _SessionBackend


def session_config(settings: Settings) -> ServerSideSessionConfig:
    return _SessionConfig(
        key=SESSION_COOKIE,
        store=SESSION_STORE,
        max_age=settings.session_idle_seconds,
        renew_on_access=True,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
    )


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=csrf_secret(settings),
        cookie_name=CSRF_COOKIE,
        cookie_secure=settings.secure_cookies,
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrf-token",
    )


def session_store(settings: Settings) -> FileStore:
    """Sessions in the data directory: every worker process of this machine sees them."""
    return _SessionFiles(settings.data_dir / "web-sessions", create_directories=True)


def template_config(
    extra_directories: Sequence[Path] = (), template_globals: Mapping[str, Any] | None = None
) -> TemplateConfig[JinjaTemplateEngine]:
    """Our templates, later pages' directories, GOV.UK Frontend's macros, and the
    functions the domains' pages give every template."""
    environment = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader([TEMPLATES, *extra_directories]),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the code: checking every file's time on every page
        # (Jinja's default) only costs; a changed template needs a restart, as code does.
        auto_reload=False,
    )
    environment.globals.update(template_globals or {})
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


class PageAuth(MiddlewareProtocol):
    """The signed-in person of a page request, from the session: the API's ``Principal``.

    Sets ``scope["user"]`` to them, or to None; the route's own role guards do
    the rest. A session whose account has gone, been made inactive or changed
    its password is ended.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            settings: Settings = scope["litestar_app"].state.settings
            session = scope.get("session")
            principal = None
            if isinstance(session, dict) and session:
                principal = await _principal(session, settings)
            if principal is None:
                # Nothing kept for anonymous requests, and an ended session is deleted.
                had_session = bool(session) or _session_cookie(scope) is not None
                cast(dict[str, Any], scope)["inspire_session_ended"] = had_session
                scope["session"] = Empty
            scope["user"] = principal
        await self.app(scope, receive, send)


class BrowserSessionCookie(MiddlewareProtocol):
    """The session cookie lasts as long as the browser runs: no ``Max-Age``.

    Litestar's session middleware gives the cookie the idle time as its
    ``Max-Age``; the server's store already ends an idle session, and a cookie
    without one is also gone when the browser is closed (a shared computer).
    Keeping the id past the idle time also lets the sign-in page say why the
    person was signed out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_without_max_age(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                cookies = headers.getall("set-cookie", [])
                if any(c.startswith(SESSION_COOKIE + "=") for c in cookies):
                    del headers["set-cookie"]
                    for cookie in cookies:
                        if cookie.startswith(SESSION_COOKIE + "=") and not cookie.startswith(
                            SESSION_COOKIE + "=null"
                        ):
                            cookie = _MAX_AGE.sub("", cookie)
                        headers.add("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_without_max_age)


_MAX_AGE = re.compile(r";\s*Max-Age=\d+", re.IGNORECASE)


def _session_cookie(scope: Scope) -> str | None:
    request: Request[Any, Any, Any] = Request(scope)
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and value != "null" else None


async def _principal(session: dict[str, Any], settings: Settings) -> Principal | None:
    try:
        account_id = UUID(str(session.get("account")))
    except ValueError:
        return None
    fingerprint = str(session.get("fingerprint") or "")
    return await services.session_principal(account_id, fingerprint, _session_secret(settings))


async def start_session(request: Request[Any, Any, Any], principal: Principal) -> None:
    """Sign ``principal`` in on this browser, under a new session id.

    A new id at every sign-in, so an id planted in the browser beforehand
    (session fixation) never becomes a signed-in one.
    """
    assert principal.id is not None
    settings: Settings = request.app.state.settings
    store = request.app.stores.get(SESSION_STORE)
    old = request.cookies.pop(SESSION_COOKIE, None)  # the cached cookies the session reads
    if old:
        await store.delete(old)
    if isinstance(store, FileStore):
        await store.delete_expired()  # sessions left to time out, never signed out of
    request.clear_session()
    fingerprint = await services.current_fingerprint(principal.id, _session_secret(settings))
    request.set_session({"account": str(principal.id), "fingerprint": fingerprint})


async def refresh_session(request: Request[Any, Any, Any], principal: Principal) -> None:
    """After a password change: this session carries on, under a new id; every other one ends."""
    await start_session(request, principal)


def end_session(request: Request[Any, Any, Any]) -> None:
    request.clear_session()


def signed_in_person(request: Request[Any, Any, Any]) -> Principal | None:
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    roles: frozenset[str]
    order: int


def collect_navigation(app: Litestar) -> list[NavItem]:
    """Every page that names itself in the navigation, with the roles its guards let in."""
    items = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            label = handler.opt.get(NAV)
            if not label or "GET" not in getattr(handler, "http_methods", ()):
                continue
            roles = access.declared_roles(handler) or frozenset()
            items.append(NavItem(label, route.path, roles, int(handler.opt.get("nav_order", 50))))
    return sorted(items, key=lambda item: (item.order, item.label))


def navigation_for(app: Litestar, principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    return [item for item in app.state.navigation if principal.role in item.roles]


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    errors: Sequence[FieldError] = (),
    **context: Any,
) -> Template:
    """A page in the base layout, with the person, their navigation and any errors."""
    principal = signed_in_person(request)
    return Template(
        template_name=template,
        status_code=status_code,
        context={
            "service_name": SERVICE_NAME,
            "user": principal,
            "navigation": navigation_for(request.app, principal),
            "current_path": request.url.path,
            "errors": list(errors),
            "error_for": {e.field: e.message for e in errors if e.field},
            **context,
        },
    )


def is_page(request: Request[Any, Any, Any]) -> bool:
    handler = request.scope.get("route_handler")
    if handler is not None:
        return bool(handler.opt.get(PAGE))
    # No route (a mistyped address): a browser asking for a page gets one.
    return "text/html" in request.headers.get("accept", "")


def new_password_first(request: Request[Any, Any, Any]) -> Redirect:
    """An admin reset this person's password: the password page, before any other."""
    return Redirect(PASSWORD_PATH + "?reset=1", status_code=303)


CSRF_REFUSED = (
    "This form has expired or did not come from this service, so nothing was saved."
    " Go back, reload the page and try again."
)

ERROR_TITLES = {
    400: "The request could not be read",
    403: "You cannot see this page",
    404: "Page not found",
    405: "Page not found",
    409: "That could not be done",
    422: "There is a problem",
    429: "Too many attempts",
    500: "Sorry, there is a problem with the service",
    503: "Sorry, the service is unavailable",
}


def page_error(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    errors: Sequence[FieldError],
    headers: dict[str, str],
    *,
    to_sign_in: bool = True,
    title: str | None = None,
) -> Redirect | Template:
    """An error on a page: a page, never the API's JSON.

    Nobody signed in, where a signed-in person was needed: to the sign-in page
    (saying so if their session has just ended), never a bare 401 or 403.
    """
    if to_sign_in and status in (401, 403) and signed_in_person(request) is None:
        ended = request.scope.get("inspire_session_ended")
        return Redirect(SIGN_IN_PATH + ("?ended=1" if ended else ""), status_code=303)
    response = page(
        request,
        "error.html",
        status_code=status,
        title=title or ERROR_TITLES.get(status, "There is a problem"),
        detail=detail,
        problems=[e for e in errors if e.message != detail],
    )
    response.headers.update(headers)
    return response


class SecurityHeaders:
    """Adds the security headers to every answer the app gives (pages, API, static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        policy = (
            SCHEMA_CONTENT_SECURITY_POLICY
            if path.startswith(access.OPENAPI_PATH)
            else CONTENT_SECURITY_POLICY
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def static_files_router() -> Router:
    """GOV.UK Frontend, htmx and our own few files, served by the app itself."""
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC],
        opt={**access.PUBLIC_ROUTE, PAGE: True},
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=3600),
        name="static",
    )


def pages_router(settings: Settings, handlers: Sequence[ControllerRouterHandler]) -> Router:
    """Every web page, behind the session, CSRF check and ``PageAuth``."""
    return Router(
        path="/",
        route_handlers=list(handlers),
        opt={access.NO_BEARER: True, PAGE: True},
        include_in_schema=False,
        request_class=HTMXRequest,
        middleware=[
            BrowserSessionCookie,
            session_config(settings).middleware,
            PageAuth,
            DefineMiddleware(CSRFMiddleware, config=csrf_config(settings)),
        ],
    )
