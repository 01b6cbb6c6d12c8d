"""An import names every returned row with its reasons, and an agency it does not know is an
error naming the closest known ones unless it is told to add it."""

from __future__ import annotations

import pytest

from programme.platform.tables import Agency, AuditEvent, Role
from referrals.tables import Referral, ReturnedReferral
from tests.builders import csv_person, csv_text, run_import

pytestmark = pytest.mark.anyio

POLICE = "South Yorkshire Police"


@pytest.fixture
async def admin(client, sign_in):
    headers = await sign_in(Role.admin, "alice")
    for name in (POLICE, "Sheffield Children's Services", "Rotherham Early Help"):
        response = await client.post("/agencies", json={"name": name}, headers=headers)
        assert response.status_code in (200, 201), response.text
    return headers


def _file() -> str:
    return csv_text(
        [
            csv_person(1),
            csv_person(2, consent_given="no"),
            csv_person(3, phone="", local_authority="Leeds"),
        ]
    )


async def test_every_returned_row_is_listed_by_line_with_its_reasons(client, admin):
    response = await client.post("/imports/referrals", content=_file().encode(), headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["imported"], body["returned"]) == (1, 2)
    rows = {r["line"]: r for r in body["returned_rows"]}
    assert set(rows) == {3, 4}
    assert rows[3]["reasons"] == ["consent_missing"]
    assert [p["field"] for p in rows[3]["problems"]] == ["consent_given"]
    assert set(rows[4]["reasons"]) == {"no_contact_number", "out_of_area"}
    assert {(p["field"], p["code"]) for p in rows[4]["problems"]} == {
        ("phone", "required"),
        ("local_authority", "out_of_area"),
    }
    # The admin is told which line and field; nothing of the person is repeated back.
    assert "PersonC" not in response.text and "Imported" not in str(rows)
    assert await ReturnedReferral.count() == 2


async def test_the_cli_lists_every_returned_row_without_personal_details(tmp_path, client, admin):
    result = run_import(tmp_path, "referrals", _file(), create_agencies=False)
    assert result.returncode == 0, result.stderr
    assert "returned: line 3: consent_missing (consent_given: " in result.stdout
    assert "returned: line 4: " in result.stdout and "out_of_area" in result.stdout
    assert "imported 1, returned 2," in result.stdout
    for personal in ("PersonB", "PersonC", "Imported", "1972-01-15", "496 0002"):
        assert personal not in result.stdout + result.stderr


async def test_an_unknown_agency_is_an_error_naming_the_closest_known_ones(client, admin):
    text = csv_text([csv_person(1), csv_person(2, agency="South Yorks Police")])
    response = await client.post("/imports/referrals", content=text.encode(), headers=admin)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["line"], error["field"], error["code"]) == (3, "agency", "unknown_agency")
    assert "'South Yorks Police'" in error["message"]
    assert f"Closest known: {POLICE}." in error["message"]
    assert "create_agencies" in error["message"]
    assert await Referral.count() == 0
    assert await Agency.count() == 3

    # Nothing close: said so, rather than a guess.
    far = csv_text([csv_person(1, agency="Zzyzx Housing Trust")])
    answer = await client.post("/imports/referrals", content=far.encode(), headers=admin)
    assert "No known agency is close." in answer.json()["errors"][0]["message"]


async def test_a_known_agency_in_other_case_and_spacing_is_that_agency(client, admin):
    text = csv_text([csv_person(1, agency="  south   yorkshire POLICE ")])
    response = await client.post("/imports/referrals", content=text.encode(), headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["agencies_created"] == []
    assert await Agency.count() == 3
    [referral] = await Referral.select(Referral.agency.name)
    assert referral["agency.name"] == POLICE


async def test_told_to_create_agencies_the_import_adds_them(client, admin):
    text = csv_text(
        [csv_person(1, agency="Barnsley Women's Aid"), csv_person(2, consent_given="no",
                                                                 agency="Doncaster Probation")]
    )  # fmt: skip
    response = await client.post(
        "/imports/referrals?create_agencies=true", content=text.encode(), headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["agencies_created"] == ["Barnsley Women's Aid", "Doncaster Probation"]
    assert await Agency.count() == 5


async def test_with_skip_invalid_only_the_unknown_agencys_rows_stay_out(client, admin):
    text = csv_text([csv_person(1), csv_person(2, agency="Sheffeld Childrens Services")])
    response = await client.post(
        "/imports/referrals?skip_invalid=true", content=text.encode(), headers=admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["imported"], body["refused"]) == (1, 1)
    assert "Sheffield Children's Services" in body["errors"][0]["message"]
    assert await Agency.count() == 3


async def test_the_cli_refuses_an_unknown_agency_unless_told_to_create_it(tmp_path, client, admin):
    text = csv_text([csv_person(1, agency="Rotherham Erly Help")])
    refused = run_import(tmp_path, "referrals", text, create_agencies=False)
    assert refused.returncode == 1
    assert "error: line 2: agency: No agency is called 'Rotherham Erly Help'" in refused.stderr
    assert "Closest known: Rotherham Early Help." in refused.stderr
    assert await Referral.count() == 0
    created = run_import(tmp_path, "referrals", text, create_agencies=True)
    assert created.returncode == 0, created.stderr
    assert "agencies created: Rotherham Erly Help" in created.stdout


async def test_a_dry_run_says_what_it_would_do_and_writes_nothing(tmp_path, client, admin):
    text = csv_text([csv_person(1), csv_person(2, consent_given="no", agency="New Agency")])
    audit_rows = await AuditEvent.count()
    response = await client.post(
        "/imports/referrals",
        params={"dry_run": "true", "create_agencies": "true"},
        content=text.encode(),
        headers=admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["checked_only"] is True
    assert (body["imported"], body["returned"], body["agencies_created"]) == (
        1, 1, ["New Agency"],
    )  # fmt: skip
    assert [r["line"] for r in body["returned_rows"]] == [3]
    assert (await Referral.count(), await ReturnedReferral.count(), await Agency.count()) == (
        0, 0, 3,
    )  # fmt: skip
    assert await AuditEvent.count() == audit_rows

    cli = run_import(tmp_path, "referrals", text, "--dry-run")
    assert cli.returncode == 0, cli.stderr
    assert "checked only: nothing was written" in cli.stdout
    assert "would import 1, returned 1" in cli.stdout
    assert "agencies would be created: New Agency" in cli.stdout
    assert await Referral.count() == 0

    # The import itself then does what the dry run said.
    done = await client.post(
        "/imports/referrals?create_agencies=true", content=text.encode(), headers=admin
    )
    assert (done.json()["imported"], done.json()["returned"]) == (1, 1)
    assert done.json()["checked_only"] is False


async def test_a_dry_run_of_police_incidents_writes_nothing(tmp_path, client, admin):
    from outcomes.tables import Reoffence

    referrals = csv_text([csv_person(1, reference="SYP-1")])
    done = await client.post("/imports/referrals", content=referrals.encode(), headers=admin)
    assert done.status_code == 200, done.text
    incidents = "reference,offence_date,offence_type\nSYP-1,2026-11-01,assault\n"
    checked = await client.post(
        "/imports/reoffending?dry_run=true", content=incidents.encode(), headers=admin
    )
    assert checked.status_code == 200, checked.text
    assert (checked.json()["imported"], checked.json()["checked_only"]) == (1, True)
    assert await Reoffence.count() == 0
    cli = run_import(tmp_path, "reoffending", incidents, "--dry-run")
    assert cli.returncode == 0, cli.stderr
    assert "would import 1 (1 after a referral)" in cli.stdout
    assert await Reoffence.count() == 0
    imported = await client.post("/imports/reoffending", content=incidents.encode(), headers=admin)
    assert (imported.json()["imported"], imported.json()["checked_only"]) == (1, False)
    assert await Reoffence.count() == 1
