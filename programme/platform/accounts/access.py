"""Bearer tokens and role guards: who may call which route.

Access is deny by default. Every route handler must carry a guard made by
``requires(...)`` (naming the roles that may call it) or be one of the few
public routes; ``check_every_route_declares_roles`` refuses to build an app
that has any other kind of route, and ``deny_undeclared`` refuses such a route
at request time as a second line.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import MethodNotAllowedException
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTAuth, Token
from litestar.types import Scope

from programme.platform.accounts import services
from programme.platform.accounts.schemas import Principal
from programme.platform.errors import NewPasswordRequired, NotAuthenticated, NotPermitted
from programme.platform.settings import ConfigurationError, Network, Settings
from programme.platform.tables import Role

PUBLIC = "public"
"""``opt`` key marking a route that needs no roles: anyone may call it."""

NO_BEARER = "no_bearer_token"
"""``opt`` key marking a route the bearer-token check skips: the public API routes,
and the web pages, which know their person from a browser session instead
(``programme.platform.web``). Roles are still checked on every route that is
not ``PUBLIC``."""

PAGE = "page"
"""``opt`` key of the web pages and their static files (``programme.platform.web``):
signed in by a browser session, errors answered as HTML pages."""

PUBLIC_ROUTE = {PUBLIC: True, NO_BEARER: True}
"""The ``opt`` of an API route anyone may call: no token, no roles."""

BEFORE_NEW_PASSWORD = "before_new_password"  # noqa: S105 (an opt key)
"""``opt`` key of the few routes and pages a person whose password an admin reset may
still use: choosing the new password, signing out, who am I. Every other one answers
``NewPasswordRequired`` until they have chosen it."""

OPENAPI_PATH = "/schema"

Guard = Callable[[ASGIConnection, BaseRouteHandler], Awaitable[None]]
"""Guards are coroutines: Litestar runs a plain function guard in a worker thread, a
thread hop per guard per request for a check that reads only the request."""


def requires(*roles: Role) -> Guard:
    """A guard letting through only the named roles."""
    allowed = frozenset(role.value for role in roles)
    if not allowed:
        raise ValueError("a route must name at least one role")

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        principal = connection.user
        if not isinstance(principal, Principal) or principal.role not in allowed:
            raise NotPermitted()

    guard.allowed_roles = allowed  # type: ignore[attr-defined]
    guard.__name__ = f"requires_{'_or_'.join(sorted(allowed))}"
    return guard


EVERY_ROLE = tuple(Role)


def declared_roles(handler: BaseRouteHandler) -> frozenset[str] | None:
    """The roles that pass every role guard on the route (guards on layers all apply)."""
    roles: frozenset[str] | None = None
    # resolve_guards() wraps each guard, hiding its roles, so read the layers directly.
    guards = [g for layer in handler.ownership_layers for g in (layer.guards or ())]
    for guard in guards:
        allowed = getattr(guard, "allowed_roles", None)
        if allowed is not None:
            roles = allowed if roles is None else roles & allowed
    return roles


def _is_public(handler: BaseRouteHandler, path: str) -> bool:
    return bool(handler.opt.get(PUBLIC)) or path.startswith(OPENAPI_PATH)


NOT_SERVED = frozenset({"OPTIONS", "HEAD"})
"""Methods no route serves (405): no browser calls the API from another origin, so
there is no CORS preflight to answer, and no route is written for HEAD."""


async def refuse_options(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """App-wide guard, first of all: OPTIONS is refused (405) with the methods the path serves.

    Litestar answers OPTIONS on every path by itself; its answer carries no roles, so
    it would meet ``deny_undeclared`` or a role guard reading a user that OPTIONS,
    never authenticated, does not have.
    """
    if connection.scope.get("method") != "OPTIONS":
        return
    # Litestar made the OPTIONS handler for exactly one path: the route's own.
    methods = {
        method
        for route in connection.app.routes
        if route.path in handler.paths
        for method in route.methods
    }
    allow = ", ".join(sorted(methods - NOT_SERVED))
    raise MethodNotAllowedException(headers={"Allow": allow})


async def require_new_password(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """App-wide guard: after an admin's reset, only choosing a new password is allowed.

    The same for bearer tokens and browser sessions (both arrive as a ``Principal``).
    """
    principal = connection.scope.get("user")
    if (
        isinstance(principal, Principal)
        and principal.reset_pending
        and not handler.opt.get(BEFORE_NEW_PASSWORD)
        and not _is_public(handler, connection.scope["path"])
    ):
        raise NewPasswordRequired()


async def deny_undeclared(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """App-wide guard: a route that names no roles is refused, whoever calls it."""
    if _is_public(handler, connection.scope["path"]):
        return
    if declared_roles(handler) is None:
        raise NotPermitted("This route declares no roles, so nobody may call it.")


def routes_and_roles(app: Litestar) -> Iterable[tuple[str, str, frozenset[str] | None, bool]]:
    """(method, path, roles, public) for every route the app serves."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            for method in sorted(getattr(handler, "http_methods", {"WS"})):
                if method in NOT_SERVED:
                    continue
                yield method, route.path, declared_roles(handler), _is_public(handler, route.path)


def api_routes_and_roles(app: Litestar) -> Iterable[tuple[str, str, frozenset[str] | None, bool]]:
    """As ``routes_and_roles``, for the API alone: no web page, no OpenAPI document."""
    pages = {
        (method, route.path)
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if handler.opt.get(PAGE)
        for method in getattr(handler, "http_methods", ())
    }
    for method, path, roles, public in routes_and_roles(app):
        if (method, path) not in pages and not path.startswith(OPENAPI_PATH):
            yield method, path, roles, public


def page_routes_and_roles(app: Litestar) -> Iterable[tuple[str, str, frozenset[str] | None, bool]]:
    """As ``routes_and_roles``, for the web pages alone (their static files included)."""
    api = set(api_routes_and_roles(app))
    for found in routes_and_roles(app):
        if found not in api and not found[1].startswith(OPENAPI_PATH):
            yield found


def check_every_route_declares_roles(app: Litestar) -> None:
    undeclared = [
        f"{method} {path}"
        for method, path, roles, public in routes_and_roles(app)
        if roles is None and not public
    ]
    if undeclared:
        raise ConfigurationError("routes without a role guard: " + ", ".join(undeclared))


async def _principal_from_token(token: Token, _: ASGIConnection) -> Principal | None:
    try:
        account_id = UUID(token.sub)
    except ValueError:
        return None
    principal = await services.principal_for(account_id)
    # A changed role invalidates tokens issued under the old one; a deactivation,
    # role change or reset moves the generation on, ending every earlier token.
    if (
        principal is None
        or principal.role != token.extras.get("role")
        or principal.token_generation != token.extras.get("gen")
        or await services.token_revoked(token.jti if isinstance(token.jti, str) else None)
    ):
        return None
    return principal


def build_jwt_auth(settings: Settings) -> JWTAuth[Principal, Token]:
    return JWTAuth[Principal, Token](
        token_secret=settings.token_secret(),
        retrieve_user_handler=_principal_from_token,
        exclude_opt_key=NO_BEARER,
        exclude=[OPENAPI_PATH],
        default_token_expiration=timedelta(minutes=settings.token_ttl_minutes),
        guards=[refuse_options, deny_undeclared, require_new_password],
    )


def issue_token(auth: JWTAuth[Principal, Token], principal: Principal, settings: Settings) -> str:
    return auth.create_token(
        identifier=str(principal.id),
        token_expiration=timedelta(minutes=settings.token_ttl_minutes),
        token_unique_jwt_id=secrets.token_hex(16),
        token_extras={"role": principal.role, "gen": principal.token_generation},
    )


def signed_in(request: Request[Any, Any, Any]) -> Principal:
    """The signed-in person: injected into every handler that names an ``actor``."""
    principal = request.user
    if not isinstance(principal, Principal):
        raise NotAuthenticated()
    return principal


DEPENDENCIES = {"actor": Provide(signed_in, sync_to_thread=False)}
SignedIn = NamedDependency[Principal]
"""A handler parameter ``actor: SignedIn`` receives the signed-in person."""


UNKNOWN_ADDRESS = "unknown"
"""The address of a client the server could not name (no peer address at all)."""

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_address(text: str) -> _Address | None:
    """An address as proxies write it: bare, ``1.2.3.4:port``, ``[v6]`` or ``[v6]:port``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        found = ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone: it names our side
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def _throttle_key(address: _Address) -> str:
    # One IPv6 host usually holds a whole /64: throttle the /64, or changing
    # address would be a fresh start for every guess.
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def forwarded_client(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """Who the client is, for throttling sign-ins, and when ``X-Forwarded-For`` is believed.

    ``peer`` is the address that opened the connection. Only when it is one of
    the ``trusted`` proxies (``INSPIRE_TRUSTED_PROXIES``) is its
    ``X-Forwarded-For`` read, from the right: each trusted proxy appends who
    connected to it, so the client is the right-most entry that is not itself a
    trusted proxy. Entries further left were written by the client and could say
    anything. An entry that is not an address stops the walk at the proxy that
    passed it on. With no trusted proxies the header is never read: a client
    could otherwise claim a fresh address for every guess.
    """
    client = _parse_address(peer)
    if client is None:
        return peer or UNKNOWN_ADDRESS
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if not any(client in network for network in trusted):
            break
        said = _parse_address(hop)
        if said is None:
            break
        client = said
    return _throttle_key(client)


def client_address(request: Request[Any, Any, Any], settings: Settings) -> str:
    """The client's address (an IPv6 client's /64) as sign-in throttling keys it."""
    return scope_client_address(request.scope, settings)


FORWARDED_FOR = b"x-forwarded-for"


def scope_client_address(scope: Scope, settings: Settings) -> str:
    """``client_address`` from the ASGI scope alone: the sign-in door
    (``platform.sign_in_door``) answers before Litestar makes a request, and must
    key the client exactly as the sign-in itself does."""
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    forwarded = (
        [
            value.decode("latin-1")
            for name, value in scope["headers"]
            if name.lower() == FORWARDED_FOR
        ]
        if settings.trusted_proxies
        else []
    )
    return forwarded_client(peer, forwarded, settings.trusted_proxies)
