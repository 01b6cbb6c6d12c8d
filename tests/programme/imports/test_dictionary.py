"""Each import file's data dictionary and template: made from the checks the import runs,
so what they say is what the import does."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from programme.imports import rules
from programme.imports.rules import ImportKind
from programme.platform.tables import Role
from referrals.rules import SPEC
from tests.builders import csv_person, csv_text, inspire

AREAS = ("Barnsley", "Doncaster", "Rotherham", "Sheffield")
TODAY = date(2026, 11, 27)
KEYS = {"fingerprint_key": "f" * 32, "reference_key": "r" * 32}


def _plan(rows: list[dict]) -> rules.Plan:
    return rules.plan_import(csv_text(rows).encode(), today=TODAY, commissioned_areas=AREAS, **KEYS)


def _dictionary() -> dict[str, rules.ColumnDefinition]:
    return {c.name: c for c in rules.referral_dictionary(AREAS, ["South Yorkshire Police"]).columns}


def test_the_dictionary_lists_exactly_the_columns_the_import_takes() -> None:
    assert set(_dictionary()) == rules.COLUMNS
    assert {n for n, c in _dictionary().items() if c.required_column} == set(rules.REQUIRED_COLUMNS)
    incidents = rules.incident_dictionary()
    assert {c.name for c in incidents.columns} == rules.INCIDENT_COLUMNS
    assert [c.name for c in incidents.columns if c.required_column] == ["offence_date"]


@pytest.mark.parametrize("name", sorted(rules.IMPORTED_FIELDS))
def test_a_blank_value_does_what_the_dictionary_says(name: str) -> None:
    column = _dictionary()[name]
    plan = _plan([csv_person(1, **{name: ""})])
    if not column.required:
        assert len(plan.accepted) == 1 and not plan.errors, (name, plan.errors)
        assert column.if_missing == "The row is imported without it."
    elif column.required_column:
        assert [e.field for e in plan.errors] == [name]
        assert column.if_missing == rules.ROW_REFUSED
    else:
        [returned] = plan.returned
        reason = SPEC[name].reason.value
        assert reason in returned.reasons
        assert f"({reason})" in column.if_missing
        assert [p.field for p in returned.problems] == [name]


@pytest.mark.parametrize(
    "name", sorted(n for n, c in _dictionary().items() if c.allowed_values and n != "agency")
)
def test_every_allowed_value_is_taken_and_others_are_not(name: str) -> None:
    column = _dictionary()[name]
    for value in column.allowed_values:
        plan = _plan([csv_person(1, **{name: value.upper()})])
        assert not plan.errors, (name, value, plan.errors)
        # Yes/no questions that return the referral when answered one way say so.
        assert plan.accepted or column.returned_when, (name, value)
    plan = _plan([csv_person(1, **{name: "surely-not-a-choice"})])
    assert plan.errors or plan.returned, name


def test_a_text_column_refuses_a_value_longer_than_the_dictionary_allows() -> None:
    column = _dictionary()["first_name"]
    assert column.max_length is not None
    assert not _plan([csv_person(1, first_name="A" * column.max_length)]).errors
    long = _plan([csv_person(1, first_name="A" * (column.max_length + 1))])
    assert [(e.field, e.code) for e in long.errors] == [("first_name", "invalid")]


def test_the_template_is_the_header_the_import_takes() -> None:
    for kind in (rules.referral_dictionary(AREAS, []), rules.incident_dictionary()):
        template = rules.template_csv(kind)
        header = next(csv.reader(io.StringIO(template)))
        assert header == [c.name for c in kind.columns]
    referral_template = rules.template_csv(rules.referral_dictionary(AREAS, []))
    plan = rules.plan_import(
        referral_template.encode(), today=TODAY, commissioned_areas=AREAS, **KEYS
    )
    assert plan.errors == [] and plan.accepted == []
    incidents = rules.plan_incidents(
        rules.template_csv(rules.incident_dictionary()).encode(), today=TODAY
    )
    assert incidents.errors == []


@pytest.mark.anyio
async def test_admins_read_the_dictionary_and_download_the_template(client, sign_in) -> None:
    admin = await sign_in(Role.admin, "alice")
    await client.post("/agencies", json={"name": "South Yorkshire Police"}, headers=admin)
    answer = await client.get("/imports/referrals/dictionary", headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    columns = {c["name"]: c for c in body["columns"]}
    assert set(columns) == rules.COLUMNS
    assert columns["agency"]["allowed_values"] == ["South Yorkshire Police"]
    assert columns["local_authority"]["allowed_values"] == list(AREAS)
    assert columns["gender"]["allowed_values"] == ["male", "female", "other", "unknown"]
    assert columns["relationship"]["allowed_values"] == ["partner", "ex_partner", "family_member"]
    assert columns["phone"]["required"] is True
    assert columns["risk_level"]["required"] is False

    template = await client.get("/imports/referrals/template", headers=admin)
    assert template.status_code == 200
    assert template.headers["content-type"].startswith("text/csv")
    assert 'filename="referrals-template.csv"' in template.headers["content-disposition"]
    assert template.text.strip().split(",") == [c["name"] for c in body["columns"]]

    incidents = await client.get("/imports/reoffending/template", headers=admin)
    assert 'filename="reoffending-template.csv"' in incidents.headers["content-disposition"]
    assert incidents.text.strip() == ",".join(c.name for c in rules.incident_dictionary().columns)

    unknown = await client.get("/imports/victims/dictionary", headers=admin)
    assert unknown.status_code in (400, 404, 422)


@pytest.mark.anyio
async def test_only_admins_read_the_dictionary(client, sign_in) -> None:
    monitor = await sign_in(Role.monitor, "mo")
    assert (await client.get("/imports/referrals/dictionary", headers=monitor)).status_code == 403
    assert (await client.get("/imports/referrals/template", headers=monitor)).status_code == 403


@pytest.mark.anyio
async def test_the_cli_prints_the_dictionary_and_the_template(clean_database) -> None:
    table = inspire("import", "dictionary", "referrals")
    assert table.returncode == 0, table.stderr
    assert "consent_given (yes_no, required)" in table.stdout
    as_json = inspire("import", "dictionary", "reoffending", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["kind"] == ImportKind.reoffending.value
    template = inspire("import", "dictionary", "referrals", "--format", "template")
    expected = rules.template_csv(rules.referral_dictionary(AREAS, []))
    assert template.stdout == expected.replace("\r\n", "\n")  # text mode reads CRLF as LF
