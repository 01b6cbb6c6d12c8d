"""Bulk import: all-or-nothing, idempotent, line-numbered errors, warnings for gaps."""

from __future__ import annotations

import os

import pytest

from programme.platform.tables import Agency, Role
from referrals.tables import Person, Referral, ReferralEvent, ReturnedReferral
from tests.builders import NEW_SIGNING_KEY, csv_person, csv_text, log_in, run_import

pytestmark = pytest.mark.anyio


@pytest.mark.smoke
async def test_a_file_is_imported_with_its_milestones_and_new_agencies(tmp_path, clean_database):
    rows = [
        csv_person(1, contacted_on="2026-10-02", engaged_on="2026-10-05", started_on="2026-10-12"),
        csv_person(2, agency="Doncaster Children's Services", closed_on="2026-10-03"),
        csv_person(3),
    ]
    result = run_import(tmp_path, "referrals", csv_text(rows))
    assert result.returncode == 0, result.stderr
    assert "imported 3, returned 0, already present 0, refused 0" in result.stdout
    assert (
        "agencies created: Doncaster Children's Services, South Yorkshire Police" in result.stdout
    )
    statuses = await Referral.select(Referral.status, Referral.status_on).order_by(
        Referral.status
    )  # fmt: skip
    assert [(r["status"], str(r["status_on"])) for r in statuses] == [
        ("accepted", "2026-10-01"), ("closed", "2026-10-03"), ("started", "2026-10-12"),
    ]  # fmt: skip
    assert await ReferralEvent.count() == 3 + 3 + 1
    assert await Agency.count() == 2


async def test_importing_the_same_file_twice_adds_nothing(tmp_path, clean_database):
    text = csv_text(
        [csv_person(1), csv_person(2, consent_given="no"), csv_person(3, reference="SYP-9")]
    )
    first = run_import(tmp_path, "referrals", text)
    assert first.returncode == 0, first.stderr
    counts = (await Referral.count(), await ReturnedReferral.count(), await ReferralEvent.count())
    second = run_import(tmp_path, "referrals", text)
    assert second.returncode == 0, second.stderr
    assert "imported 0, returned 0, already present 3" in second.stdout
    assert (await Referral.count(), await ReturnedReferral.count(),
            await ReferralEvent.count()) == counts  # fmt: skip


async def test_changing_the_signing_key_does_not_make_an_imported_file_new(
    tmp_path, client, client_after_new_signing_key, sign_in
):
    # A generated reference, a returned referral's fingerprint, and a given reference.
    text = csv_text(
        [csv_person(1), csv_person(2, consent_given="no"), csv_person(3, reference="SYP-9")]
    )
    first = run_import(tmp_path, "referrals", text)
    assert first.returncode == 0, first.stderr
    counts = (await Referral.count(), await ReturnedReferral.count(), await ReferralEvent.count())

    again = run_import(
        tmp_path, "referrals", text, env={**os.environ, "INSPIRE_SECRET_KEY": NEW_SIGNING_KEY}
    )
    assert again.returncode == 0, again.stderr
    assert "imported 0, returned 0, already present 3" in again.stdout

    await sign_in(Role.admin, "alice")
    after_change = client_after_new_signing_key
    over_http = await after_change.post(
        "/imports/referrals?create_agencies=true",
        content=text.encode(),
        headers=await log_in(after_change, "alice"),
    )
    assert over_http.status_code == 200, over_http.text
    body = over_http.json()
    assert (body["imported"], body["returned"], body["already_present"]) == (0, 0, 3)
    assert (await Referral.count(), await ReturnedReferral.count(),
            await ReferralEvent.count()) == counts  # fmt: skip


async def test_one_bad_row_means_nothing_is_imported(tmp_path, clean_database):
    rows = [csv_person(1), csv_person(2, date_of_birth="31/12/1980"), csv_person(3)]
    result = run_import(tmp_path, "referrals", csv_text(rows))
    assert result.returncode == 1
    assert "line 3: date_of_birth" in result.stderr
    assert "nothing was imported" in result.stderr
    assert "Traceback" not in result.stderr
    assert await Referral.count() == 0
    assert await Person.count() == 0
    assert await Agency.count() == 0


async def test_skip_invalid_imports_the_good_rows_and_reports_the_rest(tmp_path, clean_database):
    rows = [csv_person(1), csv_person(2, gender="sometimes"), csv_person(3)]
    result = run_import(tmp_path, "referrals", csv_text(rows), "--skip-invalid")
    assert result.returncode == 0, result.stderr
    assert "imported 2, returned 0, already present 0, refused 1" in result.stdout
    assert "line 3: gender" in result.stderr
    assert await Referral.count() == 2


async def test_unknown_columns_are_errors_on_line_1(tmp_path, clean_database):
    text = csv_text([{**csv_person(1), "favourite_colour": "blue"}])
    result = run_import(tmp_path, "referrals", text)
    assert result.returncode == 1
    assert "line 1: favourite_colour" in result.stderr
    assert await Referral.count() == 0


@pytest.mark.parametrize(
    ("milestones", "column"),
    [
        ({"contacted_on": "2026-10-05", "engaged_on": "2026-10-04"}, "engaged_on"),
        ({"contacted_on": "2026-09-01"}, "contacted_on"),
        ({"started_on": "2099-01-01"}, "started_on"),
        ({"completed_on": "2026-10-20", "closed_on": "2026-10-21"}, "closed_on"),
        ({"disengaged_on": "2026-10-20", "withdrawn_on": "2026-10-21"}, "withdrawn_on"),
        ({"started_on": "2026-10-20", "disengaged_on": "2026-10-10"}, "disengaged_on"),
        ({"engaged_on": "next tuesday"}, "engaged_on"),
    ],
)
async def test_out_of_order_and_bad_dates_are_row_errors(
    tmp_path, clean_database, milestones, column
):
    result = run_import(
        tmp_path, "referrals", csv_text([csv_person(1), csv_person(2, **milestones)])
    )
    assert result.returncode == 1
    assert f"line 3: {column}" in result.stderr
    assert await Referral.count() == 0


async def test_a_start_without_an_engagement_date_is_accepted_with_a_warning(
    tmp_path, clean_database
):
    rows = [csv_person(1, contacted_on="2026-10-02", started_on="2026-10-12")]
    result = run_import(tmp_path, "referrals", csv_text(rows))
    assert result.returncode == 0, result.stderr
    assert "warning: line 2: engaged_on" in result.stderr
    assert "warnings 1" in result.stdout
    assert await Referral.count().where(Referral.status == "started") == 1


async def test_unconsented_rows_become_returned_referrals_without_personal_details(
    tmp_path, clean_database
):
    rows = [
        csv_person(1),
        csv_person(2, consent_given="no"),
        csv_person(3, local_authority="Leeds"),
    ]
    result = run_import(tmp_path, "referrals", csv_text(rows))
    assert result.returncode == 0, result.stderr
    assert "imported 1, returned 2" in result.stdout
    reasons = await ReturnedReferral.select(ReturnedReferral.reasons).output(load_json=True)
    assert sorted(r["reasons"][0] for r in reasons) == ["consent_missing", "out_of_area"]
    assert await Person.count() == 1
    assert await Person.count().where(Person.first_name == "PersonC") == 0


async def test_a_person_cannot_have_two_open_referrals_in_one_file(tmp_path, clean_database):
    rows = [
        csv_person(1),
        csv_person(1, received_on="2026-10-05", consent_obtained_on="2026-10-05"),
    ]
    result = run_import(tmp_path, "referrals", csv_text(rows))
    assert result.returncode == 1
    assert "line 3: received_on" in result.stderr


async def test_a_person_referred_again_after_an_ending_is_linked(tmp_path, clean_database):
    rows = [
        csv_person(1, received_on="2026-06-01", consent_obtained_on="2026-06-01",
               disengaged_on="2026-07-01"),
        csv_person(1, received_on="2026-10-05", consent_obtained_on="2026-10-05"),
    ]  # fmt: skip
    result = run_import(tmp_path, "referrals", csv_text(rows))
    assert result.returncode == 0, result.stderr
    assert await Referral.count() == 2
    assert await Person.count() == 1


async def test_admins_import_over_http(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    text = csv_text([csv_person(1), csv_person(2)])
    response = await client.post(
        "/imports/referrals?create_agencies=true",
        content=text.encode(),
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["imported"], body["refused"], body["agencies_created"]) == (
        2, 0, ["South Yorkshire Police"],
    )  # fmt: skip


async def test_a_bad_file_over_http_is_422_listing_every_row(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    text = csv_text([csv_person(1, gender="?"), csv_person(2), csv_person(3, date_of_birth="x")])
    response = await client.post(
        "/imports/referrals?create_agencies=true", content=text.encode(), headers=admin
    )
    assert response.status_code == 422
    assert {(e["line"], e["field"]) for e in response.json()["errors"]} == {
        (2, "gender"), (4, "date_of_birth"),
    }  # fmt: skip
    assert await Referral.count() == 0


async def test_only_admins_import(client, sign_in):
    facilitator = await sign_in(Role.facilitator, "fran")
    response = await client.post(
        "/imports/referrals?create_agencies=true", content=b"agency\n", headers=facilitator
    )
    assert response.status_code == 403
