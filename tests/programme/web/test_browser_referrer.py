"""A police officer makes a referral in a real browser, and follows it; another agency cannot.

The officer leaves consent unanswered and the phone number out, sees both
problems at once on "check your answers", puts them right, sends the referral
and reads its reference, then finds it in "Our referrals". An officer of
another agency does not see it, nor find it by its reference. The person's
step is filled in with the keyboard alone, and axe-core finds no serious or
critical problem on any page on the way.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from programme.platform.clock import today
from programme.platform.tables import Role
from referrals import rules
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

CONSENT_DAY = today() - timedelta(days=1)
REFERENCE = re.compile(r"ITC-\d{4}-[0-9A-F]{6}")


def accessible(page: Any, name: str) -> None:
    """Screenshot the page and check it with axe-core."""
    screenshot(page, f"refpages-{name}")
    assert serious_accessibility_problems(page) == [], name


def sign_in(page: Any, username: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def tab_to(page: Any, text: str, limit: int = 40) -> None:
    """Press Tab until the focused control is the one labelled or reading ``text``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.labels && e.labels[0] ? e.labels[0].innerText : e.innerText) || ''; }"
        )
        if focused.strip() == text:
            return
    raise AssertionError(f"Tab never reached {text!r}")


def test_an_officer_makes_a_referral_puts_it_right_sends_it_and_follows_it(
    page: Any, live_server: str
) -> None:
    run(make_account("pat", Role.referrer, "South Yorkshire Police"))
    run(make_account("sam", Role.referrer, "Sheffield Children's Services"))
    sign_in(page, "pat")
    nav = page.get_by_role("navigation", name="Menu")
    nav.get_by_role("link", name="Make a referral").click()
    assert page.get_by_role("heading", name="Make a referral").is_visible()
    accessible(page, "01-start")
    page.get_by_role("button", name="Start now").click()

    # Consent: the date and how, by keyboard; whether they agreed, left unanswered.
    assert page.get_by_role("heading", name="Has the person agreed to be referred?").is_visible()
    assert "cannot be accepted" in page.locator("main").inner_text()
    accessible(page, "02-consent")
    page.get_by_label("Day").focus()
    page.keyboard.type(str(CONSENT_DAY.day))
    page.keyboard.press("Tab")
    page.keyboard.type(str(CONSENT_DAY.month))
    page.keyboard.press("Tab")
    page.keyboard.type(str(CONSENT_DAY.year))
    tab_to(page, "Spoken (in person or by phone)")
    page.keyboard.press("Space")
    tab_to(page, "Continue")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    summary = page.locator(".govuk-error-summary").first
    assert "Say whether they agreed to be referred" in summary.inner_text()
    accessible(page, "03-consent-problem")
    page.get_by_role("link", name="Leave this for now and go on").click()

    # The person, with the keyboard alone; no phone number.
    page.wait_for_url(re.compile(r"/make-a-referral/person$"))
    page.get_by_label("First name").focus()
    page.keyboard.type("Jordan")
    page.keyboard.press("Tab")
    page.keyboard.type("Testperson")
    for part in ("17", "5", "1990"):
        page.keyboard.press("Tab")
        page.keyboard.type(part)
    tab_to(page, "Male")
    page.keyboard.press("Space")
    tab_to(page, "Barnsley")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # Rotherham, the third area
    assert page.get_by_label("Rotherham").is_checked()
    accessible(page, "04-person")
    tab_to(page, "Continue")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert rules.PHONE_NEEDED in page.locator(".govuk-error-summary").first.inner_text()
    assert rules.PHONE_NEEDED in page.locator("#phone-error").inner_text()  # beside the field
    accessible(page, "05-person-problem")
    page.get_by_role("link", name="Leave this for now and go on").click()

    # Relationship and risk: the quality panel says what is still missing, and why.
    page.wait_for_url(re.compile(r"/make-a-referral/relationship$"))
    panel = page.locator("#quality")
    assert rules.QUALITY_WHY["risk_level"] in panel.inner_text()
    page.get_by_label("Partner", exact=True).check()
    page.get_by_label("High").check()
    page.wait_for_function(
        "why => !document.querySelector('#quality').innerText.includes(why)",
        arg=rules.QUALITY_WHY["risk_level"],
    )  # htmx re-checked the step as it was answered
    page.get_by_label("Prior police-recorded incidents (optional)").fill("3")
    page.locator("#substance_misuse-2").check()
    page.locator("#mental_health-3").check()
    page.locator("#children_in_household").check()
    page.locator("#on_probation_programme-2").check()
    accessible(page, "06-relationship")
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url(re.compile(r"/make-a-referral/victims$"))
    accessible(page, "07-victims")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/make-a-referral/notes$"))
    page.get_by_label("Notes for the facilitator who makes first contact").fill(
        "Best rung on weekday mornings."
    )
    accessible(page, "08-notes")
    page.get_by_role("button", name="Continue").click()

    # Check your answers: both problems at once, each linking to its answer.
    page.wait_for_url(re.compile(r"/make-a-referral/check$"))
    summary = page.locator(".govuk-error-summary").first
    assert "Say whether they agreed to be referred" in summary.inner_text()
    assert rules.PHONE_NEEDED in summary.inner_text()
    accessible(page, "09-check-problems")
    summary.get_by_role("link", name="Say whether they agreed to be referred").click()
    page.wait_for_url(re.compile(r"/make-a-referral/consent#consent_given$"))
    page.get_by_label("Yes, they agreed").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/make-a-referral/check$"))
    page.locator(".govuk-error-summary").first.get_by_role("link", name=rules.PHONE_NEEDED).click()
    page.get_by_label("Phone number").fill("0114 496 0123")
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url(re.compile(r"/make-a-referral/check$"))
    assert page.locator(".govuk-error-summary").count() == 0, page.locator("main").inner_text()[
        :600
    ]
    main = page.locator("main").inner_text()
    for answer in ("Yes", "Jordan", "17 May 1990", "Rotherham", "High", "Best rung"):
        assert answer in main
    accessible(page, "10-check-answers")
    page.get_by_role("button", name="Send referral").click()

    page.wait_for_url(re.compile(r"/make-a-referral/sent$"))
    assert page.get_by_role("heading", name="Referral sent").is_visible()
    found = REFERENCE.search(page.locator(".app-reference").inner_text())
    assert found, "no reference shown"
    reference = found.group(0)
    assert "What happens next" in page.locator("main").inner_text()
    accessible(page, "11-sent")

    nav = page.get_by_role("navigation", name="Menu")
    nav.get_by_role("link", name="Our referrals").click()
    row = page.get_by_role("row").filter(has_text=reference)
    assert row.count() == 1
    assert "Accepted" in row.inner_text()
    accessible(page, "12-our-referrals")
    page.get_by_label("Find a referral by its reference").fill(reference.lower())
    page.get_by_role("button", name="Search").click()
    assert page.get_by_role("row").filter(has_text=reference).count() == 1
    accessible(page, "13-our-referrals-found")

    # Another agency's officer sees nothing of it.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "sam")
    page.goto("/our-referrals")
    assert reference not in page.locator("main").inner_text()
    accessible(page, "14-other-agency")
    page.get_by_label("Find a referral by its reference").fill(reference)
    page.get_by_role("button", name="Search").click()
    assert "No referral of your agency has the reference" in page.locator("main").inner_text()
    assert page.get_by_role("row").count() == 0
    accessible(page, "15-other-agency-search")


def test_a_referral_without_consent_sent_anyway_is_returned_saying_why(
    page: Any, live_server: str
) -> None:
    run(make_account("pat", Role.referrer, "South Yorkshire Police"))
    sign_in(page, "pat")
    page.goto("/make-a-referral/consent")
    page.get_by_label("No", exact=True).check()
    page.get_by_label("Day").fill(str(CONSENT_DAY.day))
    page.get_by_label("Month").fill(str(CONSENT_DAY.month))
    page.get_by_label("Year").fill(str(CONSENT_DAY.year))
    page.get_by_label("In writing").check()
    page.get_by_role("button", name="Continue").click()
    refused = "The programme is voluntary: the person must agree to be referred."
    assert refused in page.locator(".govuk-error-summary").first.inner_text()
    page.get_by_role("link", name="Leave this for now and go on").click()
    page.wait_for_url(re.compile(r"/make-a-referral/person$"))
    page.get_by_label("First name").fill("Jordan")
    page.get_by_label("Last name").fill("Testperson")
    page.get_by_label("Day").fill("17")
    page.get_by_label("Month").fill("5")
    page.get_by_label("Year").fill("1990")
    page.get_by_label("Male", exact=True).check()
    page.get_by_label("Phone number").fill("0114 496 0123")
    page.get_by_label("Sheffield").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/make-a-referral/relationship$"))
    page.get_by_label("Family member").check()
    page.locator("#on_probation_programme-2").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/make-a-referral/victims$"))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/make-a-referral/notes$"))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/make-a-referral/check$"))
    assert refused in page.locator(".govuk-error-summary").first.inner_text()
    page.get_by_role("button", name="Send it anyway").click()

    page.wait_for_url(re.compile(r"/make-a-referral/returned$"))
    main = page.locator("main").inner_text()
    assert refused in main
    assert "Ask the person whether they agree to be referred" in main
    assert "Jordan" not in main and "Testperson" not in main
    accessible(page, "16-returned")
    page.goto("/make-a-referral/person")  # the answers are gone
    assert page.get_by_label("First name").input_value() == ""
