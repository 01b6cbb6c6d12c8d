"""A facilitator's day in a real browser.

A referral arrives through the API (as a police officer's system sends it); the
facilitator finds it in the caseload, records contact and engagement, starts a
group, gives the person a place, schedules two sessions, takes both registers
(one by keyboard alone), corrects the first and sees the start date follow.
axe-core finds no serious or critical problem on any page visited.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from programme.platform.clock import today
from programme.platform.tables import Role
from tests.builders import PASSWORD, good_referral
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
    screenshot(page, f"facpages-{name}")
    assert serious_accessibility_problems(page) == [], name


def fill_date(page: Any, prefix: str, day: date) -> None:
    page.locator(f"#{prefix}-day").fill(str(day.day))
    page.locator(f"#{prefix}-month").fill(str(day.month))
    page.locator(f"#{prefix}-year").fill(str(day.year))


def long_day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def referral_from_the_api(live_server: str, received_on: date) -> dict[str, Any]:
    login = httpx.post(
        live_server + "/auth/login", json={"username": "pc-jones", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    body = good_referral(
        received_on=received_on.isoformat(), consent_obtained_on=received_on.isoformat()
    )
    response = httpx.post(live_server + "/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_facilitator_takes_a_referral_from_caseload_to_started(
    page: Any, live_server: str
) -> None:
    now = today()
    received, contacted, engaged = (now - timedelta(days=d) for d in (12, 9, 8))
    first_session, second_session = now - timedelta(days=6), now - timedelta(days=3)
    run(make_account("pc-jones", Role.referrer))
    run(make_account("fran", Role.facilitator))
    referral = referral_from_the_api(live_server, received)
    reference, referral_id = referral["reference"], referral["id"]

    page.goto("/sign-in")
    page.get_by_label("Username").fill("fran")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Caseload").click()

    # The caseload: waiting since 12 days ago, past 5 working days, so overdue.
    row = page.locator("tr", has_text=reference)
    assert "Jordan Testperson" in row.inner_text()
    assert "overdue" in row.inner_text()
    accessible(page, "01-caseload")

    # Found by name too: the name goes in the form's body, never the address.
    page.get_by_label("Name").fill("testperson")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/caseload/search$"))
    expect(page.get_by_role("heading", name="1 found")).to_be_visible()
    accessible(page, "02-search")
    page.get_by_role("link", name=reference).click()

    # The referral: only the steps allowed now are offered.
    expect(page.get_by_role("heading", name="Jordan Testperson")).to_be_visible()
    assert page.get_by_role("radio", name="Contacted", exact=True).is_visible()
    assert page.get_by_role("radio", name="Engaged", exact=True).count() == 0
    accessible(page, "03-referral-new")
    page.get_by_role("button", name="Record").click()  # nothing chosen
    summary = page.locator(".govuk-error-summary")
    assert "Choose what happened." in summary.inner_text()
    assert "Enter the date it happened." in summary.inner_text()
    accessible(page, "04-referral-problems")
    page.get_by_role("radio", name="Contacted", exact=True).check()
    fill_date(page, "on", contacted)
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_role("heading", name=re.compile("Recorded: contacted"))).to_be_visible()
    page.get_by_role("radio", name="Engaged", exact=True).check()
    fill_date(page, "on", engaged)
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_role("heading", name=re.compile("Recorded: engaged"))).to_be_visible()
    assert f"engaged {long_day(engaged)}" in page.locator(".app-timeline").inner_text()
    accessible(page, "05-referral-engaged")

    # A group for them, and two sessions.
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Groups").click()
    page.get_by_label("Name").fill("Tuesday evening")
    fill_date(page, "starts_on", engaged)
    page.get_by_label("Places").fill("8")
    assert page.get_by_label("Facilitators").input_value() == "fran"
    accessible(page, "06-groups")
    page.get_by_role("button", name="Start the group").click()
    expect(page.get_by_role("heading", name="Tuesday evening", exact=True)).to_be_visible()
    page.get_by_label("From the waiting list").select_option(referral_id)
    fill_date(page, "joined_on", engaged)
    page.get_by_role("button", name="Add to the group").click()
    expect(page.get_by_role("heading", name="Added to the group")).to_be_visible()
    for session in (first_session, second_session):
        fill_date(page, "held_on", session)
        page.get_by_role("button", name="Schedule the session").click()
        expect(page.get_by_role("heading", name=re.compile("scheduled"))).to_be_visible()
    members = page.locator("table", has_text="Joined")
    assert reference in members.inner_text()
    accessible(page, "07-group")

    # The first register by keyboard alone: absent (as it was wrongly taken).
    page.get_by_role("link", name=re.compile("Register for session 1 on")).click()
    expect(page.get_by_role("heading", name=re.compile("Register: session 1"))).to_be_visible()
    accessible(page, "08-register-empty")
    page.get_by_role("radio", name="Attended", exact=True).focus()
    page.keyboard.press("ArrowRight")  # late
    page.keyboard.press("ArrowRight")  # excused
    page.keyboard.press("ArrowRight")  # absent
    page.keyboard.press("Tab")  # to the button
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Register saved")).to_be_visible()
    assert page.get_by_role("radio", name="Absent", exact=True).is_checked()
    accessible(page, "09-register-saved")

    # The second register: attended, so the referral starts on that session's day.
    page.get_by_role("link", name="Back to the group").click()
    page.get_by_role("link", name=re.compile("Register for session 2 on")).click()
    page.get_by_role("radio", name="Attended", exact=True).check()
    page.get_by_role("button", name="Save the register").click()
    expect(page.get_by_role("heading", name="Register saved")).to_be_visible()
    assert "started" in page.locator("legend").inner_text()

    # The first register corrected: they were there. The earlier mark is named.
    page.get_by_role("link", name="Back to the group").click()
    page.get_by_role("link", name=re.compile("Register for session 1 on")).click()
    page.get_by_role("radio", name="Attended", exact=True).check()
    page.get_by_role("button", name="Save the register").click()
    banner = page.locator(".govuk-notification-banner")
    assert "Register corrected" in banner.inner_text()
    assert f"{reference}: absent, now attended" in banner.inner_text()
    accessible(page, "10-register-corrected")

    # The start date follows the register: the first session's day.
    page.goto(f"/caseload/{referral_id}")
    timeline = page.locator(".app-timeline").inner_text()
    assert f"started {long_day(first_session)}" in timeline
    expect(
        page.locator(".govuk-summary-list").get_by_role("link", name="Tuesday evening")
    ).to_be_visible()
    accessible(page, "11-referral-started")

    for path, name in (
        ("/delivery/waiting-list", "12-waiting-list"),
        ("/delivery/at-risk", "13-at-risk"),
    ):
        page.goto(path)
        accessible(page, name)
