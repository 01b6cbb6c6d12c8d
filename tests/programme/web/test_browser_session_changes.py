"""Moving and cancelling a session in a real browser, with and without JavaScript.

A facilitator moves a session onto a day another session already has (the
refusal is shown beside the date), then to a free day, and cancels another;
axe-core finds no serious or critical problem on any page visited. The same
facilitator's forms also work with JavaScript turned off (plain POSTs).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from programme.platform.clock import today
from programme.platform.tables import Role
from tests.builders import PASSWORD
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
    screenshot(page, f"sessions-{name}")
    assert serious_accessibility_problems(page) == [], name


def fill_date(page: Any, prefix: str, day: date) -> None:
    page.locator(f"#{prefix}-day").fill(str(day.day))
    page.locator(f"#{prefix}-month").fill(str(day.month))
    page.locator(f"#{prefix}-year").fill(str(day.year))


def sign_in_and_start_a_group(page: Any, *days: date) -> None:
    page.goto("/sign-in")
    page.get_by_label("Username").fill("fran")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Groups").click()
    page.get_by_label("Name").fill("Thursday morning")
    fill_date(page, "starts_on", today())
    page.get_by_label("Places").fill("8")
    page.get_by_role("button", name="Start the group").click()
    expect(page.get_by_role("heading", name="Thursday morning", exact=True)).to_be_visible()
    for day in days:
        fill_date(page, "held_on", day)
        page.get_by_role("button", name="Schedule the session").click()
        expect(page.get_by_role("heading", name=re.compile("scheduled"))).to_be_visible()


def test_a_facilitator_moves_and_cancels_sessions(page: Any, live_server: str) -> None:
    first, second, third = (today() + timedelta(days=d) for d in (7, 14, 21))
    run(make_account("fran", Role.facilitator))
    sign_in_and_start_a_group(page, first, second, third)
    accessible(page, "01-group")

    page.get_by_role("link", name="Move session 1").click()
    expect(page.get_by_role("heading", name="Move session 1")).to_be_visible()
    accessible(page, "02-move")
    page.get_by_role("button", name="Move the session").click()  # nothing given
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the new date.")
    expect(summary).to_contain_text("Say why the session is moved.")
    fill_date(page, "held_on", second)
    page.get_by_label("Why is it moving?").fill("The room was double-booked")
    page.get_by_role("button", name="Move the session").click()
    expect(summary).to_contain_text("already has a group session on")
    accessible(page, "03-move-refused")
    summary.get_by_role("link", name=re.compile("already has a group session")).click()
    expect(page.locator("#held_on-day")).to_be_focused()
    fill_date(page, "held_on", first + timedelta(days=1))
    page.get_by_role("button", name="Move the session").click()
    expect(page.get_by_role("heading", name=re.compile("Session 1 moved to"))).to_be_visible()
    expect(page.get_by_text("by fran: The room was double-booked")).to_be_visible()

    page.get_by_role("link", name="Cancel session 3").click()
    expect(page.get_by_role("heading", name="Cancel session 3")).to_be_visible()
    accessible(page, "04-cancel")
    page.get_by_label("Why is it cancelled?").fill("Snow closed the centre")
    page.get_by_role("button", name="Cancel the session").click()
    expect(page.get_by_role("heading", name="Session 3 cancelled")).to_be_visible()
    row = page.locator("tr", has_text="cancelled")
    expect(row).to_have_count(1)
    assert row.get_by_role("link").count() == 0  # nothing more to do with it
    accessible(page, "05-group-after")


def test_the_facilitator_forms_work_without_javascript(
    live_server: str, empty_database: None, chromium: Any
) -> None:
    context = chromium.new_context(
        base_url=live_server, java_script_enabled=False, viewport={"width": 1100, "height": 900}
    )
    page = context.new_page()
    try:
        run(make_account("fran", Role.facilitator))
        sign_in_and_start_a_group(page, today() + timedelta(days=3))
        page.get_by_role("link", name="Cancel session 1").click()
        page.get_by_role("button", name="Cancel the session").click()
        expect(page.locator(".govuk-error-summary")).to_contain_text(
            "Say why the session is cancelled."
        )
        page.get_by_label("Why is it cancelled?").fill("Facilitator ill")
        page.get_by_role("button", name="Cancel the session").click()
        expect(page.get_by_role("heading", name="Session 1 cancelled")).to_be_visible()
        screenshot(page, "sessions-06-no-javascript")
    finally:
        context.close()
