"""A victim worker's and an admin's work in a real browser.

The victim worker, who named a victim against a referral (over the API, as their
case system does), opens the victims they support, sees the perpetrator's at-risk
alert, records consent to contact, then feedback at intake and midpoint, and
corrects the midpoint. The admin adds an account, resets a password, searches the
audit trail and downloads it. axe-core finds no serious or critical problem on any
page visited.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from playwright.sync_api import expect

from programme.platform.clock import today
from programme.platform.tables import Role
from referrals.tables import ParticipantAlert
from tests.builders import PASSWORD, VICTIM_TRACES, good_referral
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
    screenshot(page, f"vicadmin-{name}")
    assert serious_accessibility_problems(page) == [], name


def fill_date(page: Any, prefix: str, day: date) -> None:
    page.locator(f"#{prefix}-day").fill(str(day.day))
    page.locator(f"#{prefix}-month").fill(str(day.month))
    page.locator(f"#{prefix}-year").fill(str(day.year))


def bearer(live_server: str, username: str) -> dict[str, str]:
    login = httpx.post(
        live_server + "/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


async def _at_risk(referral_id: str, on: date) -> None:
    """What the register writes when a third unexcused absence in a row is marked."""
    await ParticipantAlert.insert(
        ParticipantAlert(referral=UUID(referral_id), kind="at_risk", raised_on=on)
    )


def test_a_victim_worker_records_consent_and_feedback_and_sees_the_alert(
    page: Any, live_server: str
) -> None:
    now = today()
    run(make_account("pc-jones", Role.referrer))
    run(make_account("vic", Role.victim_worker))
    made = httpx.post(
        live_server + "/referrals",
        json=good_referral(
            received_on=(now - timedelta(days=20)).isoformat(),
            consent_obtained_on=(now - timedelta(days=20)).isoformat(),
        ),
        headers=bearer(live_server, "pc-jones"),
    )
    assert made.status_code == 201, made.text
    referral_id, reference = made.json()["id"], made.json()["reference"]
    victim = {
        "first_name": "Verity",
        "last_name": "Survivorson",
        "phone": "0114 496 0888",
        "relationship": "partner",
        "consent_to_contact": False,
    }
    named = httpx.post(
        f"{live_server}/referrals/{referral_id}/victims",
        json=victim,
        headers=bearer(live_server, "vic"),
    )
    assert named.status_code == 201, named.text
    run(_at_risk(referral_id, now - timedelta(days=2)))

    sign_in(page, "vic")
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Victims").click()
    expect(page.get_by_role("heading", name="Victims you support")).to_be_visible()
    alerts = page.locator("table", has_text="Victims it concerns")
    assert "At risk" in alerts.inner_text() and reference in alerts.inner_text()
    row = page.locator("tr", has_text="Verity Survivorson")
    assert "Not asked yet" in row.inner_text() and "At risk" in row.inner_text()
    accessible(page, "01-victims")

    page.get_by_role("link", name="Verity Survivorson").click()
    expect(page.get_by_role("heading", name="Verity Survivorson", level=1)).to_be_visible()
    warning = page.locator(".govuk-warning-text")
    assert "At risk since" in warning.inner_text()  # raised two days ago
    accessible(page, "02-victim")

    # Feedback before consent is refused, with the reason on the page.
    page.get_by_role("radio", name="Intake").check()
    fill_date(page, "collected_on", now)
    page.get_by_role("radio", name="The same").check()
    page.locator("#feels_safer").check()
    page.get_by_role("button", name="Record feedback").click()
    assert "No feedback without consent" in page.locator(".govuk-error-summary").inner_text()
    accessible(page, "03-feedback-refused")

    page.get_by_role("radio", name="Consent given").check()
    fill_date(page, "on", now - timedelta(days=1))
    page.get_by_role("button", name="Record consent").click()
    expect(page.get_by_role("heading", name=re.compile("Consent given on"))).to_be_visible()
    assert "Given on" in page.locator(".govuk-summary-list").first.inner_text()

    for stage, behaviour, feels, when in (
        ("Intake", "The same", "No", now - timedelta(days=1)),
        ("Midpoint", "Reduced", "Not sure", now),
    ):
        page.get_by_role("radio", name=stage, exact=True).check()
        fill_date(page, "collected_on", when)
        page.get_by_role("radio", name=behaviour, exact=True).check()
        page.locator("fieldset", has_text="Do they feel safer?").get_by_role(
            "radio", name=feels, exact=True
        ).check()
        page.get_by_role("button", name="Record feedback").click()
        expect(page.get_by_role("heading", name=f"Feedback recorded: {stage}")).to_be_visible()
    accessible(page, "04-two-stages")

    # The midpoint corrected: the answer it replaced stays, struck through, with why.
    page.get_by_role("radio", name="Midpoint", exact=True).check()
    fill_date(page, "collected_on", now)
    page.get_by_role("radio", name="Stopped").check()
    page.locator("fieldset", has_text="Do they feel safer?").get_by_role(
        "radio", name="Yes", exact=True
    ).check()
    page.get_by_label("Why you are correcting").fill("misheard on the phone")
    page.get_by_role("button", name="Record feedback").click()
    corrected = page.locator(".govuk-inset-text", has_text="Corrected")
    assert "Reduced" in corrected.inner_text() and "misheard on the phone" in corrected.inner_text()
    accessible(page, "05-corrected")


def test_an_admin_adds_an_account_resets_a_password_and_searches_the_trail(
    page: Any, live_server: str, chromium: Any, tmp_path: Any
) -> None:
    run(make_account("alice", Role.admin))
    sign_in(page, "alice")
    menu = page.get_by_role("navigation", name="Menu")
    for label in ("Accounts", "Agencies", "Programme settings", "Audit trail"):
        expect(menu.get_by_role("link", name=label)).to_be_visible()

    menu.get_by_role("link", name="Agencies").click()
    page.get_by_label("Name").fill("Sheffield Children's Services")
    page.get_by_role("button", name="Add agency").click()
    expect(page.get_by_role("heading", name=re.compile("Agency added"))).to_be_visible()
    accessible(page, "10-agencies")

    menu.get_by_role("link", name="Accounts").click()
    accessible(page, "11-accounts")
    page.get_by_role("button", name="Add an account").click()
    page.get_by_role("button", name="Add account").click()  # nothing given
    summary = page.locator(".govuk-error-summary").inner_text()
    assert "Enter a username" in summary and "Choose a role" in summary
    accessible(page, "12-add-problems")
    page.get_by_label("Username").fill("sam")
    page.get_by_role("radio", name="Referrer").check()
    page.get_by_label("Agency").select_option("Sheffield Children's Services")
    page.get_by_role("button", name="Add account").click()
    expect(page.get_by_role("heading", name="Account sam added")).to_be_visible()
    first = page.locator("#temporary-password").inner_text()
    accessible(page, "13-account-added")

    page.get_by_role("button", name="Reset password").click()
    expect(page.get_by_role("heading", name="Password reset")).to_be_visible()
    temporary = page.locator("#temporary-password").inner_text()
    assert temporary != first
    assert "New password due" in page.locator(".govuk-summary-list").inner_text()
    account_path = page.url
    accessible(page, "14-password-reset")

    # Sam signs in with it, and can do nothing before choosing their own.
    other = chromium.new_context(base_url=live_server)
    sam = other.new_page()
    sign_in(sam, "sam", temporary)
    sam.wait_for_url(re.compile(r"/account/password\?reset=1$"))
    expect(sam.get_by_text("An administrator reset your password")).to_be_visible()
    sam.get_by_label("Current password").fill(temporary)
    sam.get_by_label("New password", exact=True).fill("sam's own long passphrase")
    sam.get_by_label("New password again").fill("sam's own long passphrase")
    sam.get_by_role("button", name="Change password").click()
    expect(sam.get_by_role("heading", name="Password changed")).to_be_visible()
    sam.goto("/our-referrals")
    expect(sam.get_by_role("heading", level=1)).not_to_have_text("Change your password")
    other.close()

    # The audit trail: what was done to sam's account, and a download of it.
    account_id = account_path.rstrip("/").rsplit("/", 1)[1]
    menu.get_by_role("link", name="Audit trail").click()
    page.get_by_label("Record id").fill(account_id)
    page.get_by_label("Action").select_option("update")
    page.get_by_role("button", name="Search").click()
    table = page.locator("table", has_text="When (UTC)")
    text = table.inner_text()
    assert "alice" in text and "sam" in text  # the reset by alice; sam's own change
    assert "fields: password" in text
    accessible(page, "15-audit")
    with page.expect_download() as waited:
        page.get_by_role("link", name=re.compile("Download these")).click()
    saved = tmp_path / "trail.csv"
    waited.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("id,occurred_at,username") and len(lines) >= 3
    assert not any(trace in saved.read_text() for trace in VICTIM_TRACES)

    menu.get_by_role("link", name="Programme settings").click()
    accessible(page, "16-settings")
    page.goto(account_path)
    expect(page.get_by_role("button", name="Deactivate")).to_be_visible()
