"""The OpenAPI document says what the service does: clients are generated from it.

Read as a client reads it, from ``/schema/openapi.json``.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from openapi_spec_validator import validate

from programme.app import create_app
from programme.platform.accounts import access
from programme.platform.settings import get_settings
from programme.platform.tables import Role
from referrals import rules

BEARER = [{"BearerToken": []}]
OPERATIONS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def served() -> tuple[Litestar, dict[str, Any]]:
    """An app and the document it serves; the schema routes touch no database."""
    app = create_app(get_settings())

    async def fetch() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get("/schema/openapi.json")
            assert response.status_code == 200
            return response.json()

    return app, asyncio.run(fetch())


@pytest.fixture(scope="module")
def document(served: tuple[Litestar, dict[str, Any]]) -> dict[str, Any]:
    return served[1]


def _openapi_path(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _routes(app: Litestar) -> list[tuple[str, str, bool]]:
    """(method, path as the document writes it, public) for every API route."""
    return [
        (method, _openapi_path(path), public)
        for method, path, _, public in access.api_routes_and_roles(app)
        if not path.startswith(access.OPENAPI_PATH)
    ]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in OPERATIONS
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].removeprefix("#/components/schemas/")
    return document["components"]["schemas"][name]


def _takes_input(operation: dict[str, Any]) -> bool:
    queries = [p for p in operation.get("parameters", []) if p["in"] != "path"]
    return "requestBody" in operation or bool(queries)


def test_the_document_is_valid_openapi(document):
    validate(document)


def test_the_bearer_token_is_required_on_guarded_routes_only(served):
    app, document = served
    assert "security" not in document, "a document-wide requirement covers public routes too"
    routes = _routes(app)
    assert len(routes) > 30
    for method, path, public in routes:
        operation = document["paths"][path][method.lower()]
        if public:
            assert "security" not in operation, (method, path)
        else:
            assert operation.get("security") == BEARER, (method, path)
    public = {(m, p) for m, p, is_public in routes if is_public}
    assert public == {("GET", "/health"), ("POST", "/auth/login")}


def test_every_operation_documents_the_errors_it_can_answer(served):
    app, document = served
    public = {(m, p) for m, p, is_public in _routes(app) if is_public}
    operations = _operations(document)
    assert len(operations) > 30
    for method, path, operation in operations:
        documented = set(operation["responses"])
        expected = {"503"}
        if (method, path) not in public:
            expected |= {"401", "403"}
        if "{" in path:
            expected.add("404")
        if _takes_input(operation):
            expected.add("422")
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            expected |= {"400", "413"}
        assert expected <= documented, (method, path, sorted(expected - documented))


def test_error_answers_are_documented_in_the_one_error_shape(document):
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (method, path, status) == ("GET", "/health", "503"):
                continue
            schema = response["content"]["application/json"]["schema"]
            shapes = schema.get("oneOf", [schema])
            assert {"$ref": "#/components/schemas/ErrorBody"} in shapes, (method, path, status)
    body = document["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"status_code", "detail", "errors"}
    field_error = _resolve(document, body["properties"]["errors"]["items"])
    assert set(field_error["required"]) == {"code", "field", "message"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/accounts"),
        ("POST", "/agencies"),
        ("POST", "/referrals"),
        ("POST", "/referrals/{referral_id}/events"),
        ("POST", "/groups"),
        ("POST", "/groups/{group_id}/members"),
        ("POST", "/groups/{group_id}/sessions"),
        ("POST", "/programme/exit-reviews"),
        ("POST", "/victims/{victim_id}/consent"),
        ("POST", "/victims/{victim_id}/feedback"),
    ],
)
def test_routes_whose_services_raise_conflict_document_409(document, method, path):
    assert "409" in document["paths"][path][method.lower()]["responses"]


def test_sign_in_documents_wrong_passwords_and_lock_outs(document):
    responses = document["paths"]["/auth/login"]["post"]["responses"]
    assert {"401", "422", "429", "503"} <= set(responses)
    assert "Retry-After" in responses["429"]["headers"]


def test_a_referral_for_no_group_place_documents_404(document):
    assert "404" in document["paths"]["/programme/exit-reviews"]["post"]["responses"]


@pytest.mark.parametrize("path", ["/imports/referrals", "/imports/reoffending"])
def test_imports_take_a_csv_body_and_answer_their_report(document, path):
    operation = document["paths"][path]["post"]
    assert operation["requestBody"]["required"] is True
    assert set(operation["requestBody"]["content"]) == {"text/csv"}
    assert "200" in operation["responses"], "an import answers 200, not 201"
    refused = operation["responses"]["422"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/ImportReport"} in refused["oneOf"]


def test_csv_and_image_answers_are_documented_with_their_media_types(document):
    paths = document["paths"]
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    for report in ("/reports/quarterly", "/reports/referral-quality", "/reports/victim-feedback"):
        content = paths[report]["get"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/csv", xlsx}, report
        assert content["application/json"]["schema"] != {}, report
    png = paths["/analysis/reoffending/plot.png"]["get"]["responses"]["200"]["content"]
    svg = paths["/analysis/reoffending/plot.svg"]["get"]["responses"]["200"]["content"]
    assert set(png) == {"image/png"}
    assert set(svg) == {"image/svg+xml"}


def test_the_referral_body_lists_every_submission_field(document):
    body = document["paths"]["/referrals"]["post"]["requestBody"]
    schema = _resolve(document, body["content"]["application/json"]["schema"])
    assert list(schema["properties"]) == list(rules.SUBMISSION_FIELDS)
    missing = rules.check({}, today=date(2026, 1, 1), commissioned_areas=("Sheffield",))
    assert set(schema["required"]) == {problem.field for problem in missing.errors}
    assert schema["additionalProperties"] is False
    gender = _resolve(document, schema["properties"]["gender"])
    assert set(gender["enum"]) == {g.value for g in rules.Gender}
    victims = schema["properties"]["victims"]
    assert victims["type"] == "array"
    assert _resolve(document, victims["items"])["title"] == "VictimSubmission"


def test_the_victim_body_lists_every_victim_field(document):
    body = document["paths"]["/referrals/{referral_id}/victims"]["post"]["requestBody"]
    schema = _resolve(document, body["content"]["application/json"]["schema"])
    assert set(schema["properties"]) == rules.FIELDS
    assert set(schema["required"]) == {"first_name", "relationship", "consent_to_contact"}
    assert schema["properties"]["relationship"]["enum"] == list(rules.RELATIONSHIPS)


@pytest.mark.anyio
async def test_the_error_answers_have_the_documented_shape(client, sign_in):
    from programme.platform.errors import ErrorBody

    admin = await sign_in(Role.admin)
    referrer = await sign_in(Role.referrer)
    answers = {
        401: await client.get("/accounts"),
        403: await client.get("/accounts", headers=referrer),
        404: await client.get(f"/referrals/{uuid.uuid4()}", headers=admin),
        422: await client.get("/audit?limit=many", headers=admin),
    }
    await client.post("/agencies", json={"name": "Twice"}, headers=admin)
    answers[409] = await client.post("/agencies", json={"name": "Twice"}, headers=admin)
    for status, response in answers.items():
        assert response.status_code == status, response.text
        body = msgspec.convert(response.json(), ErrorBody)
        assert body.status_code == status


@pytest.mark.anyio
async def test_the_documented_referral_body_does_not_validate_it(client, sign_in):
    """The intake checks still see the raw values and report every problem at once."""
    referrer = await sign_in(Role.referrer)
    body = {"first_name": 7, "gender": "unknowable", "favourite_colour": "blue"}
    response = await client.post("/referrals", json=body, headers=referrer)
    assert response.status_code == 422
    problems = {(e["code"], e["field"]) for e in response.json()["errors"]}
    assert ("unknown_field", "favourite_colour") in problems
    assert ("invalid", "first_name") in problems
    assert ("invalid", "gender") in problems
    assert ("required", "consent_given") in problems
