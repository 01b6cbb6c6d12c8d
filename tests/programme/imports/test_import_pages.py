"""Imports in the browser, over HTTP as a browser sends them: upload (multipart, CSRF),
the check with nothing written, confirm, progress for big files, and who may see what."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest

from programme.imports import services
from programme.imports.rules import ImportKind
from programme.platform.accounts.services import get_or_create_agency
from programme.platform.settings import get_settings
from programme.platform.tables import Agency, Role
from referrals.tables import Referral, ReturnedReferral
from tests.builders import ADMIN, csv_person, csv_text, spell
from tests.programme.web.helpers import browser, csrf_from, make_account, sign_in

pytestmark = pytest.mark.anyio

POLICE = "South Yorkshire Police"


@pytest.fixture
async def alice(app, clean_database):
    await make_account("alice", Role.admin)
    await get_or_create_agency(POLICE, ADMIN)
    async with browser(app) as http:
        assert (await sign_in(http, "alice")).status_code == 303
        yield http


async def upload(http, text: str, kind: str = "referrals", **options: str):
    shown = await http.get("/data-imports")
    assert shown.status_code == 200
    return await http.post(
        "/data-imports",
        data={"_csrf_token": csrf_from(shown.text), "kind": kind, **options},
        files={"file": ("file.csv", text.encode(), "text/csv")},
    )


async def form_post(http, page: str, action: str, **fields: str):
    shown = await http.get(page)
    return await http.post(action, data={"_csrf_token": csrf_from(shown.text), **fields})


async def stored() -> tuple[int, int, int]:
    return await Referral.count(), await ReturnedReferral.count(), await Agency.count()


async def test_a_bad_row_is_named_before_anything_is_written_then_the_fixed_file_goes_in(alice):
    bad = csv_text([csv_person(1), csv_person(2, gender="?"), csv_person(3, consent_given="no")])
    answer = await upload(alice, bad)
    assert answer.status_code == 303
    job_path = answer.headers["location"]
    assert job_path.startswith("/data-imports/checks/")
    page = await alice.get(job_path)
    assert page.status_code == 200
    assert "Rows with problems" in page.text
    assert '<td class="govuk-table__cell govuk-table__cell--numeric">3</td>' in page.text
    assert "<code>gender</code>" in page.text and "Expected one of: male" in page.text
    assert "Nothing in this file can be imported" in page.text
    assert "/confirm" not in page.text  # nothing to confirm
    assert await stored() == (0, 0, 1)
    for personal in ("PersonB", "PersonC", "Imported", "1971-01-15"):
        assert personal not in page.text

    fixed = csv_text([csv_person(1), csv_person(2), csv_person(3, consent_given="no")])
    answer = await upload(alice, fixed)
    job_path = answer.headers["location"]
    page = await alice.get(job_path)
    assert "Will be imported" in page.text and "Import 3 rows" in page.text
    assert 'id="returned-rows"' in page.text and "consent missing" in page.text
    assert await stored() == (0, 0, 1)

    confirmed = await form_post(alice, job_path, job_path + "/confirm")
    assert confirmed.status_code == 303, confirmed.text
    done = await alice.get(job_path)
    assert "Imported" in done.text and "2 referrals imported, 1 recorded as returned" in done.text
    assert await stored() == (2, 1, 1)

    # Confirming again imports nothing twice.
    again = await alice.post(job_path + "/confirm", data={"_csrf_token": csrf_from(done.text)})
    assert again.status_code == 409
    assert await stored() == (2, 1, 1)


async def test_a_confirmation_imports_only_what_the_check_showed(app, alice):
    text = csv_text([csv_person(1), csv_person(2)])
    job_path = (await upload(alice, text)).headers["location"]
    page = await alice.get(job_path)
    assert "Import 2 rows" in page.text
    # Meanwhile the same rows come in another way.
    await services.import_referrals(
        text.encode(), ADMIN, get_settings(), date.today(), skip_invalid=False
    )
    assert await stored() == (2, 0, 1)
    refused = await alice.post(job_path + "/confirm", data={"_csrf_token": csrf_from(page.text)})
    assert refused.status_code == 303
    after = await alice.get(job_path)
    assert "have changed since the file was checked" in after.text
    assert await stored() == (2, 0, 1)


async def test_an_unknown_agency_is_shown_with_the_closest_and_can_be_added(alice):
    text = csv_text([csv_person(1, agency="South Yorks Police")])
    page = await alice.get((await upload(alice, text)).headers["location"])
    assert "No agency is called &#39;South Yorks Police&#39;" in page.text
    assert f"Closest known: {POLICE}." in page.text
    job_path = (await upload(alice, text, create_agencies="yes")).headers["location"]
    page = await alice.get(job_path)
    assert "Agencies to add" in page.text and "South Yorks Police" in page.text
    assert await stored() == (0, 0, 1)
    await form_post(alice, job_path, job_path + "/confirm")
    assert await stored() == (1, 0, 2)


async def test_an_upload_without_a_kind_or_a_file_says_so(alice):
    shown = await alice.get("/data-imports")
    answer = await alice.post("/data-imports", data={"_csrf_token": csrf_from(shown.text)})
    assert answer.status_code == 422
    assert "Choose what the file holds." in answer.text
    assert "Choose a CSV file to upload." in answer.text


async def test_an_upload_without_the_csrf_token_is_refused(alice):
    answer = await alice.post(
        "/data-imports",
        data={"kind": "referrals"},
        files={"file": ("file.csv", b"agency\n", "text/csv")},
    )
    assert answer.status_code == 403


async def test_an_upload_is_the_uploaders_alone_and_discarding_forgets_it(app, alice):
    job_path = (await upload(alice, csv_text([csv_person(1)]))).headers["location"]
    await make_account("bob", Role.admin)
    await make_account("fran", Role.facilitator)
    async with browser(app) as bob:
        await sign_in(bob, "bob")
        assert (await bob.get(job_path)).status_code == 404
        home = await bob.get("/")
        refused = await bob.post(job_path + "/confirm", data={"_csrf_token": csrf_from(home.text)})
        assert refused.status_code == 404
    async with browser(app) as fran:
        await sign_in(fran, "fran")
        assert (await fran.get("/data-imports")).status_code == 403
        assert (await fran.get(job_path)).status_code == 403
    token = job_path.rsplit("/", 1)[1]
    folder = get_settings().data_dir / "imports-pending"
    assert (folder / f"{token}.csv").exists()
    discarded = await form_post(alice, job_path, job_path + "/discard")
    assert discarded.status_code == 303
    assert not (folder / f"{token}.csv").exists()
    assert (await alice.get(job_path)).status_code == 404
    assert await stored() == (0, 0, 1)


async def test_the_problems_download_lists_every_line_and_no_values(alice):
    text = csv_text(
        [csv_person(1, date_of_birth="x"), csv_person(2, consent_given="no"), csv_person(3)]
    )
    job_path = (await upload(alice, text, skip_invalid="yes")).headers["location"]
    download = await alice.get(job_path + "/problems.csv")
    assert download.status_code == 200
    assert 'filename="referrals-problems.csv"' in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["line"], r["outcome"], r["column"]) for r in rows] == [
        ("2", "error", "date_of_birth"),
        ("3", "returned", "consent_given"),
    ]
    assert "Person" not in download.text


async def test_the_columns_page_and_the_template_download(alice):
    page = await alice.get("/data-imports/columns/referrals")
    assert page.status_code == 200
    assert ">consent_given</code>" in page.text and "consent_missing" in page.text
    assert POLICE in page.text
    template = await alice.get("/data-imports/template/reoffending")
    assert 'filename="reoffending-template.csv"' in template.headers["content-disposition"]
    assert template.text.startswith("reference,first_name,last_name,date_of_birth,offence_date")


def _many(count: int) -> str:
    born = date(1960, 1, 1)
    rows = [
        csv_person(
            1,
            first_name=f"Person{spell(i, 4)}",
            date_of_birth=(born + timedelta(days=i)).isoformat(),
        )
        for i in range(count)
    ]
    return csv_text(rows)


async def test_a_big_file_is_checked_and_imported_in_the_background(alice):
    count = services.PROGRESS_ABOVE_ROWS + 500
    job_path = (await upload(alice, _many(count))).headers["location"]
    for _ in range(600):
        page = await alice.get(job_path)
        if "Import " in page.text:
            break
        assert "Checking the file" in page.text
        await asyncio.sleep(0.1)
    assert f"Import {count:,} rows" in page.text
    assert await stored() == (0, 0, 1)
    await alice.post(job_path + "/confirm", data={"_csrf_token": csrf_from(page.text)})
    for _ in range(1200):
        page = await alice.get(job_path)
        if "referrals imported" in page.text:
            break
        assert "Importing the file" in page.text
        await asyncio.sleep(0.1)
    assert f"{count:,} referrals imported" in page.text
    assert await Referral.count() == count


async def test_a_job_under_way_shows_its_progress_and_refreshes_itself(alice):
    job_path = (await upload(alice, csv_text([csv_person(1)]))).headers["location"]
    token = job_path.rsplit("/", 1)[1]
    folder = get_settings().data_dir / "imports-pending"
    job = await services.job(token, await _alice(), get_settings())
    job.stage, job.done, job.total, job.check = services.JobStage.checking, 500, 2500, None
    services._save(folder, job)
    page = await alice.get(job_path)
    assert "Checked 500 of 2,500 rows (20%)" in page.text
    assert 'hx-trigger="every 2s"' in page.text  # htmx polls it
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page.text

    # A job whose process ended says so, rather than spinning for ever.
    job.updated_at = datetime.now(UTC) - timedelta(minutes=services.STALLED_MINUTES + 1)
    (folder / f"{token}.json").write_bytes(msgspec.json.encode(job))
    page = await alice.get(job_path)
    assert "The work stopped before it finished" in page.text
    assert "hx-trigger" not in page.text


async def _alice():
    from programme.platform.accounts import services as accounts
    from programme.platform.tables import Account

    row = await Account.select(Account.id).where(Account.username == "alice").first()
    assert row is not None
    principal = await accounts.principal_for(row["id"])
    assert principal is not None
    return principal


async def test_the_kind_is_recorded_with_the_upload(alice):
    text = "offence_date,reference\n2025-01-01,NOPE-1\n"
    job_path = (await upload(alice, text, kind="reoffending")).headers["location"]
    page = await alice.get(job_path)
    assert "Police-recorded incidents" in page.text
    assert "Unmatched: no referral has this reference." in page.text
    token = job_path.rsplit("/", 1)[1]
    job = await services.job(token, await _alice(), get_settings())
    assert job.kind is ImportKind.reoffending


async def test_rows_in_a_reported_quarter_need_a_reason_given_on_the_page(alice):
    from programme.platform.locked_quarters.services import lock_quarter

    await lock_quarter("Q2 2026-27", ADMIN, date(2026, 11, 27))
    text = csv_text([csv_person(1, received_on="2026-09-10", consent_obtained_on="2026-09-10")])
    job_path = (await upload(alice, text)).headers["location"]
    page = await alice.get(job_path)
    assert "Reported quarters" in page.text and "Q2 2026-27" in page.text
    assert 'name="override_reason"' in page.text
    await alice.post(job_path + "/confirm", data={"_csrf_token": csrf_from(page.text)})
    refused = await alice.get(job_path)
    assert "reported and locked" in refused.text and "Give the reason below" in refused.text
    assert await stored() == (0, 0, 1)
    await alice.post(
        job_path + "/confirm",
        data={"_csrf_token": csrf_from(refused.text), "override_reason": "Late police return."},
    )
    assert "1 referral imported" in (await alice.get(job_path)).text
    assert await stored() == (1, 0, 1)


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.admin])
async def test_no_other_role_opens_an_import_page(app, alice, role):
    job_path = (await upload(alice, csv_text([csv_person(1)]))).headers["location"]
    await make_account("someone", role)
    async with browser(app) as http:
        await sign_in(http, "someone")
        home = await http.get("/")
        assert "/data-imports" not in home.text  # not in their navigation
        token = {"_csrf_token": csrf_from(home.text)}
        for path in (
            "/data-imports",
            "/data-imports/columns/referrals",
            "/data-imports/template/referrals",
            job_path,
            job_path + "/problems.csv",
        ):
            assert (await http.get(path)).status_code == 403, path
        for path in ("/data-imports", job_path + "/confirm", job_path + "/discard"):
            assert (await http.post(path, data=token)).status_code == 403, path
    assert await stored() == (0, 0, 1)
