"""The referrers' pages over HTTP: make a referral step by step, and "Our referrals".

Each step is checked by the API's intake rules (the messages are the rules'
own), the answers stay on the server, a refused referral keeps nothing about
the person, and only referrers of the agency see its referrals.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from programme.platform.clock import today
from programme.platform.tables import Role
from programme.platform.validation import DATE, REQUIRED
from referrals import pages, rules
from referrals.tables import Person, Referral, ReturnedReferral
from tests.builders import PHONE, distinct_referral
from tests.programme.web.helpers import browser, csrf_from, make_account, sign_in

pytestmark = pytest.mark.anyio

START = "/make-a-referral"
CONSENT_DAY = today() - timedelta(days=1)

CONSENT = {
    "consent_given": "yes",
    "consent_obtained_on-day": str(CONSENT_DAY.day),
    "consent_obtained_on-month": str(CONSENT_DAY.month),
    "consent_obtained_on-year": str(CONSENT_DAY.year),
    "consent_method": "verbal",
}
PERSON = {
    "first_name": "Jordan",
    "last_name": "Testperson",
    "date_of_birth-day": "17",
    "date_of_birth-month": "5",
    "date_of_birth-year": "1990",
    "gender": "male",
    "phone": PHONE,
    "local_authority": "Rotherham",
}
RELATIONSHIP = {
    "relationship": "partner",
    "risk_level": "medium",
    "prior_incidents": "2",
    "substance_misuse": "no",
    "mental_health": "yes",
    "children_in_household": "not_known",
    "on_probation_programme": "no",
}
VICTIM = {
    "victim_first_name": "Verity",
    "victim_last_name": "Survivorson",
    "victim_phone": "0114 496 0888",
    "victim_relationship": "partner",
    "victim_consent_to_contact": "yes",
    "victim_consent_obtained_on-day": str(CONSENT_DAY.day),
    "victim_consent_obtained_on-month": str(CONSENT_DAY.month),
    "victim_consent_obtained_on-year": str(CONSENT_DAY.year),
}
NOTES = {"notes": "Best rung on weekday mornings.", "reference": ""}
PERSONAL = ("Jordan", "Testperson", "1990", "496 0123", "4960123", "Verity", "Survivorson")


async def post(http: httpx.AsyncClient, path: str, **fields: Any) -> httpx.Response:
    """Send a form on ``path`` with the session's CSRF token, as the browser would."""
    shown = await http.get(path)
    assert shown.status_code in (200, 422), (path, shown.status_code)
    return await http.post(path, data={"_csrf_token": csrf_from(shown.text), **fields})


@asynccontextmanager
async def referrer(
    app: Any, username: str = "pat", agency: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A referrer's browser, signed in."""
    await make_account(username, Role.referrer, agency)
    async with browser(app) as http:
        assert (await sign_in(http, username)).status_code == 303
        yield http


def summary(html: str) -> str:
    found = re.search(r'<div class="govuk-error-summary".*?</ul>', html, re.S)
    assert found, "no error summary"
    return found.group(0)


def hrefs(html: str) -> list[str]:
    return re.findall(r'(?:href|action|hx-post)="([^"]*)"', html)


async def fill_all(http: httpx.AsyncClient, **steps: dict[str, str]) -> None:
    """Answer every step, each with its Continue."""
    for slug, fields in (
        ("consent", CONSENT),
        ("person", PERSON),
        ("relationship", RELATIONSHIP),
        ("victims", {}),
        ("notes", NOTES),
    ):
        response = await post(http, f"{START}/{slug}", **steps.get(slug, fields))
        assert response.status_code in (303, 422), (slug, response.text)


async def test_a_referral_made_step_by_step_is_accepted_and_its_reference_shown(
    app, clean_database
):
    async with referrer(app) as http:
        start = await http.get(START)
        assert start.status_code == 200 and "Start now" in start.text
        consent = await http.get(f"{START}/consent")
        assert "without their consent the referral cannot be accepted" in consent.text.lower()
        response = await post(http, f"{START}/consent", **CONSENT)
        assert response.status_code == 303 and response.headers["location"] == f"{START}/person"
        response = await post(http, f"{START}/person", **PERSON)
        assert response.headers["location"] == f"{START}/relationship"
        response = await post(http, f"{START}/relationship", **RELATIONSHIP)
        assert response.headers["location"] == f"{START}/victims"
        response = await post(http, f"{START}/victims", action="add", **VICTIM)
        assert response.headers["location"] == f"{START}/victims"
        victims = await http.get(f"{START}/victims")
        assert "Verity Survivorson (partner; agreed to be contacted on" in victims.text
        response = await post(http, f"{START}/victims", action="continue")
        assert response.headers["location"] == f"{START}/notes"
        response = await post(http, f"{START}/notes", **NOTES)
        assert response.headers["location"] == f"{START}/check"

        check = await http.get(f"{START}/check")
        assert check.status_code == 200
        assert "govuk-error-summary" not in check.text
        for shown in ("Jordan", "17 May 1990", "Rotherham", "Medium", "Best rung on weekday"):
            assert shown in check.text
        assert f'href="{START}/person#phone"' in check.text  # each answer can be changed
        sent = await post(http, f"{START}/check")
        assert sent.status_code == 303 and sent.headers["location"] == f"{START}/sent"
        confirmation = await http.get(f"{START}/sent")
        stored = await Referral.select(Referral.reference, Referral.notes).first()
        assert stored is not None and stored["notes"] == NOTES["notes"]
        assert stored["reference"] in confirmation.text
        assert "What happens next" in confirmation.text
        # The answers have left the session: a new referral starts empty.
        assert "Start now" in (await http.get(START)).text
        assert 'value="Jordan"' not in (await http.get(f"{START}/person")).text


async def test_a_step_lists_every_problem_the_intake_checks_find(app, clean_database):
    async with referrer(app) as http:
        response = await post(http, f"{START}/consent")
        assert response.status_code == 422
        problems = summary(response.text)
        # The rules' "required", for each answer of the step, each linking to it.
        for message in (
            "Say whether they agreed to be referred",
            "Enter the date they agreed to be referred",
            "Say how they agreed to be referred",
        ):
            assert message in problems
        for anchor in ("#consent_given", "#consent_obtained_on-day", "#consent_method"):
            assert f'href="{anchor}"' in problems
        assert 'id="consent_given-error"' in response.text  # and beside the field

        fifteen = today().replace(year=today().year - 15)
        response = await post(
            http,
            f"{START}/person",
            **{
                **PERSON,
                "phone": "12345",
                "date_of_birth-day": str(fifteen.day),
                "date_of_birth-month": str(fifteen.month),
                "date_of_birth-year": str(fifteen.year),
            },
        )
        problems = summary(response.text)
        assert rules.PHONE_INVALID in problems
        assert "aged 16 and over on the day of referral" in problems


async def test_dates_are_three_boxes_and_a_day_that_does_not_exist_is_refused(app, clean_database):
    async with referrer(app) as http:
        response = await post(
            http,
            f"{START}/person",
            **{**PERSON, "date_of_birth-day": "31", "date_of_birth-month": "2"},
        )
        assert response.status_code == 422
        assert pages.DATE_IN_BOXES in summary(response.text)  # the rules' DATE, in the form's words
        assert DATE not in response.text
        assert 'name="date_of_birth-day" type="text" value="31"' in response.text  # as typed


async def test_check_your_answers_lists_every_problem_with_a_link_to_its_step(app, clean_database):
    async with referrer(app) as http:
        await fill_all(
            http,
            consent={k: v for k, v in CONSENT.items() if k != "consent_given"},
            person={**PERSON, "phone": ""},
        )
        check = await http.get(f"{START}/check")
        problems = summary(check.text)
        assert rules.PHONE_NEEDED in problems
        assert "Say whether they agreed to be referred" in problems
        assert f'href="{START}/consent#consent_given"' in problems
        assert f'href="{START}/person#phone"' in problems
        assert "Send it anyway" in check.text


async def test_a_refused_referral_says_why_and_what_to_do_and_keeps_nothing_personal(
    app, clean_database
):
    async with referrer(app) as http:
        await fill_all(http, consent={**CONSENT, "consent_given": "no"})
        response = await post(http, f"{START}/check")
        assert response.status_code == 303
        assert response.headers["location"] == f"{START}/returned"
        returned = await http.get(f"{START}/returned")
        assert "The programme is voluntary: the person must agree to be referred." in returned.text
        assert "Ask the person whether they agree to be referred" in returned.text
        for trace in PERSONAL:
            assert trace not in returned.text
        rows = await ReturnedReferral.select(ReturnedReferral.reasons)
        assert [r["reasons"] for r in rows] in (
            [["consent_missing"]],
            [f'["{rules.ReturnReason.consent_missing.value}"]'],
        )
        assert await Person.count() == 0 and await Referral.count() == 0
        # And the answers are gone from the session.
        assert 'value="Jordan"' not in (await http.get(f"{START}/person")).text


async def test_the_quality_panel_names_each_useful_detail_still_missing(app, clean_database):
    async with referrer(app) as http:
        page = await http.get(f"{START}/relationship")
        for why in rules.QUALITY_WHY.values():
            assert why in page.text
        await post(http, f"{START}/relationship", **RELATIONSHIP)
        page = await http.get(f"{START}/notes")
        assert rules.QUALITY_WHY["risk_level"] not in page.text
        assert rules.QUALITY_WHY["prior_incidents"] not in page.text
        # Children "not known": the complex needs are still missing, as in the report.
        assert rules.QUALITY_WHY["complex_needs"] in page.text
        assert f'href="{START}/relationship#substance_misuse"' in page.text


async def test_the_live_check_reports_the_answers_given_so_far_and_saves_nothing(
    app, clean_database
):
    async with referrer(app) as http:
        shown = await http.get(f"{START}/person")
        assert f'hx-post="{START}/person/live"' in shown.text
        response = await http.post(
            f"{START}/person/live",
            data={"_csrf_token": csrf_from(shown.text), "phone": "12345", "first_name": "Jo"},
            headers={"HX-Request": "true"},
        )
        assert response.status_code == 200
        assert response.text.lstrip().startswith('<div id="live-check"')
        assert rules.PHONE_INVALID in response.text
        assert REQUIRED not in response.text  # boxes not reached yet are not problems yet
        assert 'value="Jo"' not in (await http.get(f"{START}/person")).text

        shown = await http.get(f"{START}/relationship")
        response = await http.post(
            f"{START}/relationship/live",
            data={"_csrf_token": csrf_from(shown.text), "risk_level": "high"},
        )
        assert rules.QUALITY_WHY["risk_level"] not in response.text
        assert rules.QUALITY_WHY["notes"] in response.text


async def test_victims_are_checked_as_the_api_checks_them_and_can_be_removed(app, clean_database):
    async with referrer(app) as http:
        undated = {
            **VICTIM,
            **{f"victim_consent_obtained_on-{p}": "" for p in ("day", "month", "year")},
        }
        response = await post(http, f"{START}/victims", action="add", **undated)
        assert response.status_code == 422
        assert "Say when consent to contact was given." in summary(response.text)
        assert 'href="#victim_consent_obtained_on-day"' in summary(response.text)
        await post(http, f"{START}/victims", action="add", **VICTIM)
        page = await http.get(f"{START}/victims")
        assert "Verity Survivorson" in page.text
        assert rules.QUALITY_WHY["victims"] not in page.text
        await post(http, f"{START}/victims", action="remove-0")
        page = await http.get(f"{START}/victims")
        assert "Verity Survivorson" not in page.text


async def _referrals(app: Any, agency: str, numbers: range, username: str) -> list[str]:
    """Referrals of ``agency`` through the API's own service, received a day apart."""
    from programme.app import OUTCOMES
    from programme.platform.accounts import services as accounts
    from programme.platform.tables import Account
    from referrals import services

    await make_account(username, Role.referrer, agency)
    row = await Account.select(Account.id).where(Account.username == username).first()
    assert row is not None
    actor = await accounts.principal_for(row["id"])
    assert actor is not None
    first = date(2026, 10, 1)
    references = []
    for n in numbers:
        received = (first + timedelta(days=n)).isoformat()
        body = distinct_referral(n, received_on=received, consent_obtained_on=received)
        accepted = await services.submit_referral(
            body, actor, app.state.settings, today(), OUTCOMES
        )
        references.append(accepted.reference)
    return references


async def test_our_referrals_lists_the_agencys_own_newest_first_a_page_at_a_time(
    app, clean_database
):
    ours = await _referrals(app, "South Yorkshire Police", range(25), "pat")
    theirs = await _referrals(app, "Sheffield Children's Services", range(30, 32), "sam")
    async with browser(app) as http:
        await sign_in(http, "pat")
        first = await http.get("/our-referrals")
        assert first.status_code == 200
        shown = re.findall(r"ITC-\d{4}-[0-9A-F]{6}", first.text)
        assert shown == list(reversed(ours))[:20]  # newest first
        assert "Accepted" in first.text and "Showing 1 to 20 of 25 referrals." in first.text
        assert 'href="/our-referrals?offset=20"' in first.text
        second = await http.get("/our-referrals?offset=20")
        assert re.findall(r"ITC-\d{4}-[0-9A-F]{6}", second.text) == list(reversed(ours))[20:]
        for reference in theirs:
            assert reference not in first.text + second.text

        found = await post(http, "/our-referrals", reference=ours[3].lower())
        assert re.findall(r"ITC-\d{4}-[0-9A-F]{6}", found.text) == [ours[3]]
        other = await post(http, "/our-referrals", reference=theirs[0])
        assert "No referral of your agency has the reference" in other.text
        assert "<table" not in other.text
        bad = await post(http, "/our-referrals", reference="")
        assert bad.status_code == 422 and 'href="#reference"' in summary(bad.text)


@pytest.mark.parametrize("role", [r for r in Role if r != Role.referrer])
async def test_only_referrers_may_open_the_referrer_pages(app, clean_database, role):
    await make_account("someone", role)
    async with browser(app) as http:
        for path in (START, f"{START}/consent", f"{START}/check", "/our-referrals"):
            assert (await http.get(path)).headers["location"] == "/sign-in", path
        await sign_in(http, "someone")
        for path in (START, f"{START}/consent", f"{START}/check", "/our-referrals"):
            response = await http.get(path)
            assert response.status_code == 403, (path, role)
        home = await http.get("/")
        assert "Make a referral" not in home.text and "Our referrals" not in home.text


async def test_a_form_without_its_csrf_token_is_refused_and_nothing_is_kept(app, clean_database):
    async with referrer(app) as http:
        for path in (f"{START}/consent", f"{START}/person", f"{START}/check", "/our-referrals"):
            response = await http.post(path, data={**CONSENT, **PERSON})
            assert response.status_code == 403, path
        assert 'value="Jordan"' not in (await http.get(f"{START}/person")).text
        assert await Referral.count() == 0 and await ReturnedReferral.count() == 0


async def test_no_personal_detail_reaches_an_address_and_no_page_is_cached(app, clean_database):
    async with referrer(app) as http:
        await post(http, f"{START}/victims", action="add", **VICTIM)
        await fill_all(http)
        sent = await post(http, f"{START}/check")
        visited = [sent]
        for path in (
            START,
            *(f"{START}/{s}" for s in ("consent", "person", "relationship", "victims", "notes")),
            f"{START}/check",
            f"{START}/sent",
            "/our-referrals",
        ):
            visited.append(await http.get(path))
        nav = await http.get("/")
        assert "Make a referral" in nav.text and "Our referrals" in nav.text
        for response in visited:
            assert response.headers["cache-control"] == "no-store", response.url
            addresses = [response.headers.get("location", ""), str(response.url)]
            addresses += hrefs(response.text)
            for address in addresses:
                for trace in PERSONAL:
                    assert trace not in address, (response.url, address)


async def test_the_live_check_never_writes_the_session_back(app, clean_database):
    """Sent while the person types, it may end after the form's own POST saved new answers:
    writing back the session it started with would put the old answers back."""
    async with referrer(app) as http:
        shown = await http.get(f"{START}/person")
        token = csrf_from(shown.text)
        live = await http.post(f"{START}/person/live", data={"_csrf_token": token, "phone": "1"})
        assert live.status_code == 200
        assert not any(
            c.startswith("inspire_session=") for c in live.headers.get_list("set-cookie")
        )
        saved = await http.post(f"{START}/person", data={"_csrf_token": token, **PERSON})
        assert any(c.startswith("inspire_session=") for c in saved.headers.get_list("set-cookie"))
        assert 'value="Jordan"' in (await http.get(f"{START}/person")).text
