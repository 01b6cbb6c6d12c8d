"""Importing police-recorded incidents: matching, unmatched rows, idempotency."""

from __future__ import annotations

import os

import pytest

from outcomes.tables import Reoffence
from programme.platform.tables import Role
from referrals.tables import Person
from tests.builders import NEW_SIGNING_KEY, distinct_referral, log_in, run_import

pytestmark = pytest.mark.anyio


@pytest.fixture
async def referred(client, sign_in):
    """Two referred people; returns their references."""
    referrer = await sign_in(Role.referrer, "rita")
    references = []
    for n in (1, 2):
        body = distinct_referral(n, reference=f"SYP-{n:04d}")
        response = await client.post("/referrals", json=body, headers=referrer)
        assert response.status_code == 201, response.text
        references.append(response.json()["reference"])
    return references


@pytest.mark.smoke
async def test_incidents_match_by_reference_or_by_name_and_birth_date(tmp_path, referred):
    text = (
        "reference,first_name,last_name,date_of_birth,offence_date,offence_type\n"
        "SYP-0001,,,,2026-10-20,assault\n"
        ",Personc,Example,1962-03-03,2026-11-01,criminal damage\n"
        ",personc,EXAMPLE,1962-03-03,2025-01-01,harassment\n"
    )
    result = run_import(tmp_path, "reoffending", text)
    assert result.returncode == 0, result.stderr
    assert "imported 3 (2 after a referral), already present 0, refused 0" in result.stdout
    rows = await Reoffence.select(
        Reoffence.person.first_name.as_alias("who"), Reoffence.offence_date
    ).order_by(Reoffence.offence_date)
    assert [(r["who"], str(r["offence_date"])) for r in rows] == [
        ("Personc", "2025-01-01"),
        ("Personb", "2026-10-20"),
        ("Personc", "2026-11-01"),
    ]


async def test_a_facilitator_sees_police_recorded_prior_incidents_beside_the_referrers_figure(
    tmp_path, referred, client, sign_in
):
    text = "reference,offence_date\nSYP-0001,2025-03-01\nSYP-0001,2025-09-01\nSYP-0001,2026-10-20\n"
    assert run_import(tmp_path, "reoffending", text).returncode == 0
    facilitator = await sign_in(Role.facilitator, "fran")
    listing = (await client.get("/referrals?limit=10", headers=facilitator)).json()
    first = next(r for r in listing["items"] if r["reference"] == "SYP-0001")
    assert first["police_recorded_prior_incidents"] is None  # single referrals only
    detail = (await client.get(f"/referrals/{first['id']}", headers=facilitator)).json()
    assert detail["prior_incidents"] == 2  # as the referrer gave it
    assert detail["police_recorded_prior_incidents"] == 2  # before 2026-10-01


async def test_an_unmatched_row_means_nothing_is_imported(tmp_path, referred):
    text = (
        "reference,first_name,last_name,date_of_birth,offence_date\n"
        "SYP-0001,,,,2026-10-20\n"
        "SYP-9999,,,,2026-10-21\n"
        ",Nobody,Known,1980-01-01,2026-10-22\n"
        "SYP-0002,,,,tomorrow\n"
    )
    result = run_import(tmp_path, "reoffending", text)
    assert result.returncode == 1
    for line in ("line 3: reference", "line 4: first_name", "line 5: offence_date"):
        assert line in result.stderr
    assert "Traceback" not in result.stderr
    assert await Reoffence.count() == 0
    partial = run_import(tmp_path, "reoffending", text, "--skip-invalid")
    assert partial.returncode == 0
    assert "imported 1" in partial.stdout and "refused 3" in partial.stdout


async def test_importing_the_same_file_twice_adds_nothing(tmp_path, referred):
    text = (
        "reference,offence_date,offence_type\n"
        "SYP-0001,2026-10-20,assault\n"
        "SYP-0001,2026-10-20,assault\n"
    )
    first = run_import(tmp_path, "reoffending", text)
    assert "imported 2" in first.stdout, first.stderr
    second = run_import(tmp_path, "reoffending", text)
    assert "imported 0" in second.stdout and "already present 2" in second.stdout
    assert await Reoffence.count() == 2


async def test_changing_the_signing_key_does_not_make_an_imported_file_new(
    tmp_path, referred, client_after_new_signing_key, sign_in
):
    text = (
        "reference,offence_date,offence_type\n"
        "SYP-0001,2026-10-20,assault\n"
        "SYP-0001,2026-10-20,assault\n"
        "SYP-0002,2026-10-21,\n"
    )
    first = run_import(tmp_path, "reoffending", text)
    assert "imported 3" in first.stdout, first.stderr

    again = run_import(
        tmp_path, "reoffending", text, env={**os.environ, "INSPIRE_SECRET_KEY": NEW_SIGNING_KEY}
    )
    assert "imported 0" in again.stdout and "already present 3" in again.stdout, again.stderr

    await sign_in(Role.admin, "alice")
    after_change = client_after_new_signing_key
    over_http = await after_change.post(
        "/imports/reoffending", content=text.encode(), headers=await log_in(after_change, "alice")
    )
    assert over_http.status_code == 200, over_http.text
    assert (over_http.json()["imported"], over_http.json()["already_present"]) == (0, 3)
    assert await Reoffence.count() == 3


async def test_a_name_matching_two_people_is_ambiguous(tmp_path, referred):
    person = await Person.select().where(Person.first_name == "Personb").first()
    await Person.insert(Person(**{k: v for k, v in person.items() if k != "id"}))
    text = (
        "first_name,last_name,date_of_birth,offence_date\nPersonb,Example,1961-03-02,2026-10-20\n"
    )
    result = run_import(tmp_path, "reoffending", text)
    assert result.returncode == 1
    assert "Ambiguous: 2 people match" in result.stderr


async def test_admins_import_over_http_and_others_cannot(client, referred, sign_in):
    admin = await sign_in(Role.admin, "alice")
    text = b"reference,offence_date\nSYP-0002,2026-10-30\n"
    response = await client.post("/imports/reoffending", content=text, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 1
    bad = await client.post("/imports/reoffending", content=b"reference,when\nX,1\n", headers=admin)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "when"
    facilitator = await sign_in(Role.facilitator, "fran")
    assert (
        await client.post("/imports/reoffending", content=text, headers=facilitator)
    ).status_code == 403
