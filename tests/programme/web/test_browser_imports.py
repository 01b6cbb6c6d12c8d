"""An admin imports a referrals file in a real browser.

The first file has one bad row: the check names it (line and reasons) and
nothing is written; the admin fixes the file, uploads it again, sees what will
be imported and returned, and confirms. axe-core finds no serious or critical
problem on any page visited.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from programme.imports.services import PROGRESS_ABOVE_ROWS
from programme.platform.accounts.services import get_or_create_agency
from programme.platform.tables import Role
from referrals.tables import Referral, ReturnedReferral
from tests.builders import ADMIN, PASSWORD, csv_person, csv_text, spell
from tests.programme.web.conftest import (
    CHROMIUM,
    NO_CHROMIUM,
    run,
    screenshot,
    serious_accessibility_problems,
)
from tests.programme.web.helpers import make_account

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(NO_CHROMIUM, allow_module_level=True)


def accessible(page: Any, name: str) -> None:
    screenshot(page, f"imports-{name}")
    assert serious_accessibility_problems(page) == [], name


async def _stored() -> tuple[int, int]:
    return await Referral.count(), await ReturnedReferral.count()


def stored() -> tuple[int, int]:
    return run(_stored())  # type: ignore[no-any-return]


def choose_file(page: Any, text: str) -> None:
    page.get_by_role("radio", name="Referrals").check()
    page.get_by_label("The CSV file").set_input_files(
        files=[{"name": "referrals.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.get_by_role("button", name="Check the file").click()


def test_an_admin_sees_a_bad_row_named_before_anything_is_written_then_imports(
    page: Any, live_server: str
) -> None:
    run(make_account("alice", Role.admin))
    run(get_or_create_agency("South Yorkshire Police", ADMIN))

    page.goto("/sign-in")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Imports").click()
    expect(page.get_by_role("heading", name="Import a file")).to_be_visible()
    accessible(page, "01-upload")

    # What the file needs, before writing one.
    page.get_by_role("link", name="the columns of a referrals file").click()
    expect(page.get_by_role("heading", name=re.compile("the file's columns"))).to_be_visible()
    assert "consent_obtained_on" in page.locator("table").inner_text()
    accessible(page, "02-columns")
    page.get_by_role("link", name="Back to imports").click()

    # Nothing chosen: both problems named.
    page.get_by_role("button", name="Check the file").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Choose what the file holds.")
    expect(summary).to_contain_text("Choose a CSV file to upload.")
    accessible(page, "03-upload-problems")

    # One bad row: named with its line and reasons; nothing written.
    bad = csv_text([csv_person(1), csv_person(2, gender="?"), csv_person(3, consent_given="no")])
    choose_file(page, bad)
    page.wait_for_url(re.compile(r"/data-imports/checks/[A-Za-z0-9_-]+$"))
    problems = page.locator("#row-problems")
    expect(problems).to_be_visible()
    row = problems.locator("tbody tr")
    expect(row).to_have_count(1)
    assert row.locator("td").nth(0).inner_text() == "3"
    assert "gender" in row.inner_text() and "Expected one of: male" in row.inner_text()
    expect(page.get_by_text("Nothing in this file can be imported")).to_be_visible()
    assert page.get_by_role("button", name=re.compile("^Import")).count() == 0
    assert stored() == (0, 0)
    accessible(page, "04-check-with-a-bad-row")

    # Fixed, uploaded again: what will happen, then confirmed.
    page.get_by_role("link", name="Upload a corrected file").click()
    fixed = csv_text([csv_person(1), csv_person(2), csv_person(3, consent_given="no")])
    choose_file(page, fixed)
    page.wait_for_url(re.compile(r"/data-imports/checks/[A-Za-z0-9_-]+$"))
    summary_list = page.locator("#import-summary")
    expect(summary_list).to_contain_text("Will be imported")
    returned = page.locator("#returned-rows tbody tr")
    expect(returned).to_have_count(1)
    assert returned.locator("td").nth(0).inner_text() == "4"
    assert "consent missing" in returned.inner_text()
    assert stored() == (0, 0)
    accessible(page, "05-check-clean")
    page.get_by_role("button", name="Import 3 rows").click()
    expect(page.locator(".govuk-panel")).to_contain_text("2 referrals imported")
    expect(page.locator(".govuk-panel")).to_contain_text("1 recorded as returned")
    assert stored() == (2, 1)
    accessible(page, "06-imported")


def _many(count: int) -> str:
    born = date(1960, 1, 1)
    return csv_text(
        [
            csv_person(
                1,
                first_name=f"Person{spell(i, 4)}",
                date_of_birth=(born + timedelta(days=i)).isoformat(),
            )
            for i in range(count)
        ]
    )


def sign_in_as_alice(page: Any) -> None:
    page.goto("/sign-in")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/data-imports")


def test_a_big_file_shows_progress_until_its_check_and_its_import_are_done(
    page: Any, live_server: str, chromium: Any
) -> None:
    count = PROGRESS_ABOVE_ROWS + 500
    text = _many(count)
    run(make_account("alice", Role.admin))
    run(get_or_create_agency("South Yorkshire Police", ADMIN))
    sign_in_as_alice(page)
    choose_file(page, text)
    page.wait_for_url(re.compile(r"/data-imports/checks/[A-Za-z0-9_-]+$"))
    if page.get_by_role("heading", name="Checking the file").count():
        accessible(page, "07-checking")
    # htmx polls the page: the result arrives without a reload.
    expect(page.get_by_role("button", name=f"Import {count:,} rows")).to_be_visible(timeout=120_000)
    accessible(page, "08-big-file-checked")
    page.get_by_role("button", name=f"Import {count:,} rows").click()
    if page.get_by_role("heading", name="Importing the file").count():
        accessible(page, "09-importing")
    expect(page.locator(".govuk-panel")).to_contain_text(
        f"{count:,} referrals imported", timeout=180_000
    )
    assert stored() == (count, 0)

    # Without JavaScript the page reloads itself until the check is done.
    context = chromium.new_context(base_url=live_server, java_script_enabled=False)
    try:
        plain = context.new_page()
        sign_in_as_alice(plain)
        choose_file(plain, text)
        plain.wait_for_url(re.compile(r"/data-imports/checks/[A-Za-z0-9_-]+$"))
        expect(plain.locator("#import-summary")).to_contain_text(
            f"{count:,} (added nothing)", timeout=120_000
        )
    finally:
        context.close()
    assert stored() == (count, 0)
