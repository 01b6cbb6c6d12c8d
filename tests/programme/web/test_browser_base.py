"""The web pages' base in a real browser, as a person uses it.

First run, signing in (wrong, then right), the navigation, changing one's
password, signing out; axe-core finds no serious or critical problem on any
page; the cookies' flags and the headers are what the browser actually got.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from programme.platform.tables import Role
from programme.platform.web import services
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
    pytest.skip(NO_CHROMIUM, allow_module_level=True)  # one line for the whole module

ADMIN_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new long passphrase"


def accessible(page: Any, name: str) -> None:
    """Screenshot the page and check it with axe-core."""
    screenshot(page, name)
    assert serious_accessibility_problems(page) == [], name


def sign_in(page: Any, username: str, password: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_first_run_sign_in_change_password_and_sign_out(page: Any, live_server: str) -> None:
    token = run(services.open_first_run(datetime.now(UTC)))  # as ``inspire serve`` prints it
    assert token is not None

    page.goto(f"/set-up/{token}")
    assert page.get_by_role("heading", name="Set up the first administrator").is_visible()
    accessible(page, "01-set-up")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_label("Password again").fill("not the same at all")
    page.get_by_role("button", name="Create the administrator").click()
    summary = page.locator(".govuk-error-summary")
    assert "The two passwords differ." in summary.inner_text()
    accessible(page, "02-set-up-problem")
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_label("Password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Create the administrator").click()

    page.wait_for_url(re.compile(r"/$"))
    assert "Signed in as alice (admin)" in page.locator(".app-signed-in-as").inner_text()
    nav = page.get_by_role("navigation", name="Menu")
    assert nav.get_by_role("link", name="Change password").is_visible()
    # GOV.UK Frontend's script ran under the Content-Security-Policy, and htmx is there.
    assert "govuk-frontend-supported" in (page.locator("body").get_attribute("class") or "")
    assert page.evaluate("typeof htmx") == "object"
    accessible(page, "03-home-admin")

    # The link worked once: now it is dead, even for the person who used it.
    page.goto(f"/set-up/{token}")
    assert page.get_by_role("heading", name="Page not found").is_visible()
    assert "expired or has been used" in page.locator("main").inner_text()
    accessible(page, "04-set-up-link-used")

    page.goto("/account/password")
    accessible(page, "05-change-password")
    page.get_by_label("Current password").fill(ADMIN_PASSWORD)
    page.get_by_label("New password", exact=True).fill("too short")
    page.get_by_label("New password again").fill("too short")
    page.get_by_role("button", name="Change password").click()
    assert "Use at least 12 characters." in page.locator(".govuk-error-summary").inner_text()
    accessible(page, "06-change-password-problem")
    page.get_by_label("Current password").fill(ADMIN_PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_role("heading", name="Password changed").is_visible()
    accessible(page, "07-password-changed")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/sign-in\?signed_out=1$"))
    assert "You have signed out." in page.locator(".govuk-notification-banner").inner_text()
    accessible(page, "08-signed-out")

    sign_in(page, "alice", ADMIN_PASSWORD)  # the old password
    assert (
        "The username or password is not right."
        in page.locator(".govuk-error-summary").inner_text()
    )
    accessible(page, "09-wrong-password")
    sign_in(page, "alice", NEW_PASSWORD)
    page.wait_for_url(re.compile(r"/$"))


def test_a_signed_out_visit_goes_to_sign_in_and_the_session_cookie_is_guarded(
    page: Any, live_server: str
) -> None:
    run(make_account("fran", Role.facilitator))
    page.goto("/account/password")
    assert page.url.endswith("/sign-in")
    accessible(page, "10-sign-in")
    # Keyboard alone: type, Tab to the next field, Enter to send.
    page.get_by_label("Username").focus()
    page.keyboard.type("fran")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/$"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["inspire_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    assert session["expires"] == -1  # gone when the browser closes; the server ends idle ones
    assert cookies["inspire_csrf"]["httpOnly"] is True
    response = page.goto("/")
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    nav = page.get_by_role("navigation", name="Menu")
    assert [link.inner_text().strip() for link in nav.get_by_role("link").all()] == [
        "Home",
        "Caseload",
        "Groups",
        "At risk",
        "Waiting list",
        "Change password",
    ]


def test_a_form_sent_without_its_csrf_token_is_refused(page: Any, live_server: str) -> None:
    run(make_account("fran", Role.facilitator))
    sign_in(page, "fran", PASSWORD)
    page.wait_for_url(re.compile(r"/$"))
    page.goto("/account/password")
    # A page elsewhere posting into the service, as a forged form would: no token.
    page.evaluate("document.querySelectorAll('input[name=_csrf_token]').forEach(e => e.remove())")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_role("heading", name="This form could not be sent").is_visible()
    accessible(page, "11-csrf-refused")
    # Nothing changed: the old password still signs in.
    response = httpx.post(
        live_server + "/auth/login", json={"username": "fran", "password": PASSWORD}
    )
    assert response.status_code == 200
