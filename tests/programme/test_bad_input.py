"""Bad input never gets a 500: every route, walked with what PostgreSQL, the JSON
decoder or the router cannot take, answers a 4xx in the one error shape.

Each route is called by a role it admits (so the role guards let the request
through to the input checks), with a random id wherever its path takes one.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody

from programme.app import create_app
from programme.platform.accounts import access
from programme.platform.http_inputs import MAX_OFFSET, takes_json_body
from programme.platform.settings import ConfigurationError, get_settings
from programme.platform.tables import Role
from programme.platform.validation import MAX_JSON_DEPTH

pytestmark = pytest.mark.anyio

NUL = "a\x00b"
DEEP = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000
NOT_UTF8 = b'{"first_name": "Jos\xe9", "username": "\xff\xfe", "password": "x"}'
HUGE = str(2**63)


def concrete(path: str) -> str:
    path = re.sub(r"\{[^}:]+:int\}", "1", path)  # a step's id
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def handlers(app: Litestar) -> dict[tuple[str, str], Any]:
    return {
        (method, route.path): handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        for method in getattr(handler, "http_methods", ())
    }


def api_routes(app: Litestar) -> list[tuple[str, str, frozenset[str] | None, bool, Any]]:
    """(method, path, roles, public, handler) of every route but the OpenAPI schema's."""
    by_route = handlers(app)
    return [
        (method, path, roles, public, by_route[(method, path)])
        for method, path, roles, public in access.api_routes_and_roles(app)
        if not path.startswith(access.OPENAPI_PATH)
    ]


def query_parameters(handler: Any) -> dict[str, Any]:
    """Public query name -> the parameter's field definition."""
    return {
        definition.kwarg_definition.name or name: definition
        for name, definition in handler.parsed_fn_signature.parameters.items()
        if type(definition.kwarg_definition).__name__ == "QueryParameter"
    }


@pytest.fixture
async def callers(sign_in) -> dict[str, dict[str, str]]:
    return {role.value: await sign_in(role, f"{role.value}-prober") for role in Role}


def caller(roles: frozenset[str] | None, callers: dict[str, dict[str, str]]) -> dict[str, str]:
    """A token of a role the route admits (an admin's if it admits admins), or none."""
    if not roles:
        return {}
    return callers["admin" if "admin" in roles else sorted(roles)[0]]


def assert_one_shape(response: httpx.Response, *context: Any) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (*context, response.status_code, response.text)
    body = response.json()
    assert body["status_code"] == response.status_code, context
    assert isinstance(body["detail"], str) and body["detail"], context
    assert body["errors"], (*context, body)
    for error in body["errors"]:
        assert set(error) == {"code", "field", "message"}, (*context, error)
        assert error["code"] and error["message"], (*context, error)
    return body


async def test_a_nul_character_in_any_query_parameter_is_refused_naming_it(app, client, callers):
    walked = 0
    for method, path, roles, _, handler in api_routes(app):
        names = [*query_parameters(handler), "unexpected"]
        params = dict.fromkeys(names, NUL)
        response = await client.request(
            method, concrete(path), params=params, headers=caller(roles, callers)
        )
        body = assert_one_shape(response, method, path)
        assert response.status_code == 422, (method, path, response.text)
        assert {e["field"] for e in body["errors"]} == set(names), (method, path, body)
        assert all("NUL" in e["message"] for e in body["errors"]), body
        walked += 1
    assert walked > 30


async def test_a_nul_character_anywhere_in_a_json_body_is_refused_naming_the_field(
    app, client, callers
):
    body_with_nul = {
        "first_name": NUL,
        "notes": "fine",
        "victims": [{"first_name": "x", "last_name": NUL}],
        "na\x00me": "x",
    }
    expected_fields = {"first_name", "victims[0].last_name", "na\\u0000me"}
    walked = 0
    for method, path, roles, _, handler in api_routes(app):
        if not takes_json_body(handler):
            continue
        for body in (body_with_nul, [body_with_nul]):
            response = await client.request(
                method, concrete(path), json=body, headers=caller(roles, callers)
            )
            problems = assert_one_shape(response, method, path)
            assert response.status_code == 422, (method, path, response.text)
            prefix = "[0]." if isinstance(body, list) else ""
            assert {e["field"] for e in problems["errors"]} == {
                prefix + field for field in expected_fields
            }, (method, path, problems)
        walked += 1
    assert walked >= 12


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (DEEP, f"deeper than {MAX_JSON_DEPTH}"),
        (DEEP_OBJECT, f"deeper than {MAX_JSON_DEPTH}"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "deeper than"),
        (NOT_UTF8, "not UTF-8"),
        (b'{"username": "x", "password": ', "not valid JSON"),
    ],
    ids=["deep list", "deep object", "just too deep", "invalid UTF-8", "cut short"],
)
async def test_a_json_body_that_cannot_be_read_is_400_on_every_route(
    app, client, callers, content, words
):
    walked = 0
    for method, path, roles, _, handler in api_routes(app):
        if not takes_json_body(handler):
            continue
        response = await client.request(
            method,
            concrete(path),
            content=content,
            headers={**caller(roles, callers), "Content-Type": "application/json"},
        )
        body = assert_one_shape(response, method, path)
        assert response.status_code == 400, (method, path, response.text)
        assert words in body["errors"][0]["message"], (method, path, body)
        walked += 1
    assert walked >= 12


async def test_json_nested_as_deep_as_allowed_is_read(client):
    nested: Any = "alice"
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    response = await client.post("/auth/login", json={"username": nested, "password": "x"})
    assert response.status_code == 422, response.text  # read, then refused as not text


async def test_an_integer_query_parameter_out_of_range_is_refused_naming_it(app, client, callers):
    walked = 0
    for method, path, roles, _, handler in api_routes(app):
        for name, definition in query_parameters(handler).items():
            if "int" not in str(definition.annotation):
                continue
            for value in (HUGE, "-" + HUGE, str(MAX_OFFSET + 1) + "0" * 10):
                response = await client.request(
                    method,
                    concrete(path),
                    params={name: value},
                    headers=caller(roles, callers),
                    # A readable body (POST /referrals/search's), so the parameter is the one
                    # problem: an unreadable body would be listed beside it.
                    json={} if takes_json_body(handler) else None,
                )
                body = assert_one_shape(response, method, path, name, value)
                assert response.status_code == 422, (method, path, name, response.text)
                assert [(e["code"], e["field"]) for e in body["errors"]] == [("invalid", name)]
                assert "whole number from" in body["errors"][0]["message"], body
                walked += 1
    assert walked >= 12  # limit and offset of /referrals and /audit, horizon, landmark


async def test_an_offset_beyond_any_table_is_refused_not_sent_to_postgresql(client, callers):
    for path in ("/referrals", "/audit"):
        response = await client.get(path, params={"offset": str(2**63)}, headers=callers["admin"])
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {
                "code": "invalid",
                "field": "offset",
                "message": f"Expected a whole number from 0 to {MAX_OFFSET}.",
            }
        ]
        at_the_bound = await client.get(
            path, params={"offset": str(MAX_OFFSET)}, headers=callers["admin"]
        )
        assert at_the_bound.status_code == 200, at_the_bound.text


def test_every_integer_query_parameter_has_both_bounds():
    app = create_app(get_settings())
    unbounded = [
        (method, path, name)
        for method, path, _, _, handler in api_routes(app)
        for name, definition in query_parameters(handler).items()
        if "int" in str(definition.annotation)
        and (definition.kwarg_definition.ge is None or definition.kwarg_definition.le is None)
    ]
    assert unbounded == []


@pytest.mark.parametrize("signed_in", [True, False], ids=["with a token", "anonymous"])
async def test_options_is_refused_on_every_path_with_the_methods_it_serves(
    app, client, callers, signed_in
):
    served: dict[str, set[str]] = {}
    roles_of: dict[str, frozenset[str] | None] = {}
    for method, path, roles, _, _ in api_routes(app):
        served.setdefault(path, set()).add(method)
        roles_of[path] = roles
    for path, methods in served.items():
        headers = caller(roles_of[path], callers) if signed_in else {}
        response = await client.options(concrete(path), headers=headers)
        body = assert_one_shape(response, "OPTIONS", path)
        assert response.status_code == 405, (path, response.text)
        assert response.headers["Allow"] == ", ".join(sorted(methods)), path
        assert body["errors"][0]["code"] == "method_not_allowed"
        for internal in ("scope", "Middleware", "declares no roles"):
            assert internal not in response.text, (path, response.text)
    assert len(served) > 20


async def test_a_method_a_path_does_not_serve_is_405_naming_the_ones_it_does(client):
    response = await client.patch("/referrals")
    assert_one_shape(response, "PATCH")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize("label", ["Q4 9999-00", "Q1 0000-01", "Q2 1066-67"])
async def test_a_quarter_outside_the_calendar_is_refused_not_a_500(client, callers, label):
    for path in ("/reports/quarterly", "/reports/referral-quality", "/reports/victim-feedback"):
        for params in ({"from": label}, {"to": label}, {"from": label, "to": label}):
            response = await client.get(path, params=params, headers=callers["monitor"])
            body = assert_one_shape(response, path, params)
            assert response.status_code == 422, (path, params, response.text)
            assert {e["field"] for e in body["errors"]} <= {"from", "to"}


def test_an_app_with_a_route_replacing_the_input_checks_refuses_to_start():
    async def trusting(_: Any) -> None:
        return None

    @post("/trusting", guards=[access.requires(Role.admin)], before_request=trusting)
    async def trusting_route(data: JSONBody[dict[str, Any]]) -> None:
        return None

    with pytest.raises(ConfigurationError, match="POST /trusting"):
        create_app(get_settings(), extra_routes=[trusting_route])
