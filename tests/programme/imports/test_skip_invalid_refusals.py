"""``skip_invalid`` skips bad rows; it does not turn a file that imported nothing into a success.

Found by the Schemathesis run (tests/test_fuzz.py): ``POST /imports/referrals
?skip_invalid=true`` with an empty body answered 200, as if the file had gone in.
A script importing nightly with skip_invalid would never have been told.
"""

from __future__ import annotations

import pytest

from outcomes.tables import Reoffence
from programme.platform.tables import Role
from referrals.tables import Referral
from tests.builders import csv_person, csv_text, run_import

pytestmark = pytest.mark.anyio

UNREADABLE = {
    "empty": b"",
    "unknown columns only": b"{}\n",
    "not UTF-8": b"\xff\xfe\x00agency\n",
}


@pytest.fixture
async def admin(sign_in):
    return {**await sign_in(Role.admin, "alice"), "Content-Type": "text/csv"}


@pytest.mark.parametrize("kind", ["referrals", "reoffending"])
@pytest.mark.parametrize("content", UNREADABLE.values(), ids=UNREADABLE.keys())
async def test_a_file_that_cannot_be_read_is_422_even_when_skipping_invalid_rows(
    client, admin, kind, content
):
    response = await client.post(
        f"/imports/{kind}?skip_invalid=true", content=content, headers=admin
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["imported"] == 0
    assert body["errors"], body


async def test_a_file_whose_every_row_is_bad_is_422_even_when_skipping_invalid_rows(client, admin):
    text = csv_text([csv_person(1, gender="?"), csv_person(2, date_of_birth="x")])
    response = await client.post(
        "/imports/referrals?skip_invalid=true&create_agencies=true",
        content=text.encode(),
        headers=admin,
    )
    assert response.status_code == 422, response.text
    assert {(e["line"], e["field"]) for e in response.json()["errors"]} == {
        (2, "gender"), (3, "date_of_birth"),
    }  # fmt: skip
    assert await Referral.count() == 0


async def test_skipping_invalid_rows_still_imports_the_good_ones_with_200(client, admin):
    text = csv_text([csv_person(1, gender="?"), csv_person(2)])
    response = await client.post(
        "/imports/referrals?skip_invalid=true&create_agencies=true",
        content=text.encode(),
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["imported"], response.json()["refused"]) == (1, 1)
    assert await Referral.count() == 1


async def test_a_file_imported_before_is_not_a_failure_when_skipping_invalid_rows(client, admin):
    good = csv_text([csv_person(1)])
    first = await client.post(
        "/imports/referrals?create_agencies=true", content=good.encode(), headers=admin
    )
    assert first.status_code == 200, first.text
    again = csv_text([csv_person(1), csv_person(2, gender="?")])
    response = await client.post(
        "/imports/referrals?skip_invalid=true&create_agencies=true",
        content=again.encode(),
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["already_present"], response.json()["refused"]) == (1, 1)


@pytest.mark.parametrize("kind", ["referrals", "reoffending"])
async def test_the_command_line_fails_on_a_file_that_imported_nothing(
    tmp_path, clean_database, kind
):
    result = run_import(tmp_path, kind, "", "--skip-invalid")
    assert result.returncode == 1, result.stdout
    assert "nothing was imported" in result.stderr
    assert "Traceback" not in result.stderr
    assert await Referral.count() == 0
    assert await Reoffence.count() == 0
