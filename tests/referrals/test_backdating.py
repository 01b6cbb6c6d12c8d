"""Back-dating over the API is bounded (INSPIRE_BACKDATE_DAYS); the import is not, and says
how many of its rows were older than the bound.

The suite as a whole runs with a bound of a century (tests/conftest.py), so that tests
may record history over the API; these tests set the default bound of 30 days.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta

import httpx
import pytest

from programme.platform.clock import today
from programme.platform.settings import ConfigurationError, get_settings
from programme.platform.tables import Role
from referrals.rules import backdated
from referrals.tables import Referral, ReferralEvent, ReturnedReferral
from tests.builders import csv_person, csv_text, good_referral

pytestmark = pytest.mark.anyio

BOUND = 30


@pytest.fixture
async def bounded(app, client) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP into the same service started with INSPIRE_BACKDATE_DAYS=30."""
    from programme.app import create_app

    service = create_app(replace(app.state.settings, backdate_days=BOUND))
    transport = httpx.ASGITransport(app=service)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def days_ago(n: int) -> str:
    return (today() - timedelta(days=n)).isoformat()


def test_the_rule_counts_whole_days_back_from_today():
    on = date(2026, 10, 31)
    assert backdated("on", on - timedelta(days=30), on, 30) is None
    problem = backdated("on", on - timedelta(days=31), on, 30)
    assert problem is not None
    assert (problem.code, problem.field) == ("backdated", "on")
    assert "2026-10-01" in problem.message and "import" in problem.message


async def test_a_referral_received_longer_ago_than_the_bound_is_refused_naming_the_field(
    bounded, sign_in
):
    referrer = await sign_in(Role.referrer)
    body = good_referral(received_on=days_ago(BOUND + 1), consent_obtained_on=days_ago(BOUND + 2))
    refused = await bounded.post("/referrals", json=body, headers=referrer)
    assert refused.status_code == 422, refused.text
    (problem,) = refused.json()["errors"]
    assert (problem["code"], problem["field"]) == ("backdated", "received_on")
    assert "import" in problem["message"]
    # Not a return: nothing is counted against the agency, and nothing is kept.
    assert await ReturnedReferral.count() == 0
    assert await Referral.count() == 0


async def test_a_referral_received_within_the_bound_is_accepted(bounded, sign_in):
    referrer = await sign_in(Role.referrer)
    body = good_referral(received_on=days_ago(BOUND), consent_obtained_on=days_ago(BOUND))
    accepted = await bounded.post("/referrals", json=body, headers=referrer)
    assert accepted.status_code == 201, accepted.text


async def test_a_stale_refused_referral_lists_its_other_problems_too(bounded, sign_in):
    referrer = await sign_in(Role.referrer)
    body = good_referral(
        received_on=days_ago(BOUND + 5), consent_obtained_on=days_ago(BOUND + 6), phone=None
    )
    refused = await bounded.post("/referrals", json=body, headers=referrer)
    assert refused.status_code == 422
    codes = {(e["code"], e["field"]) for e in refused.json()["errors"]}
    assert codes == {("backdated", "received_on"), ("required", "phone")}
    assert await ReturnedReferral.count() == 0


async def test_a_lifecycle_event_dated_longer_ago_than_the_bound_is_refused(bounded, sign_in):
    referrer = await sign_in(Role.referrer)
    facilitator = await sign_in(Role.facilitator)
    body = good_referral(received_on=days_ago(BOUND), consent_obtained_on=days_ago(BOUND))
    referral_id = (await bounded.post("/referrals", json=body, headers=referrer)).json()["id"]
    late = await bounded.post(
        f"/referrals/{referral_id}/events",
        json={"type": "contacted", "on": days_ago(BOUND + 1)},
        headers=facilitator,
    )
    assert late.status_code == 422, late.text
    (problem,) = late.json()["errors"]
    assert (problem["code"], problem["field"]) == ("backdated", "on")
    assert await ReferralEvent.count().where(ReferralEvent.type == "contacted") == 0
    within = await bounded.post(
        f"/referrals/{referral_id}/events",
        json={"type": "contacted", "on": days_ago(BOUND)},
        headers=facilitator,
    )
    assert within.status_code == 201, within.text


async def test_the_import_is_not_bounded_and_counts_the_older_rows(bounded, sign_in):
    admin = await sign_in(Role.admin, "alice")
    rows = [
        csv_person(1, received_on="2024-05-01", consent_obtained_on="2024-05-01"),
        csv_person(2, received_on="2024-06-01", consent_obtained_on="2024-06-01"),
        csv_person(3, received_on=days_ago(3), consent_obtained_on=days_ago(3)),
    ]
    response = await bounded.post(
        "/imports/referrals?create_agencies=true", content=csv_text(rows).encode(), headers=admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["imported"], body["older_than_backdate_limit"]) == (3, 2)
    assert await Referral.count() == 3


def test_an_unreadable_bound_stops_the_service_at_start_naming_the_setting(monkeypatch):
    for value, said in (
        ("thirty", "INSPIRE_BACKDATE_DAYS must be a whole number, not 'thirty'"),
        ("-1", "INSPIRE_BACKDATE_DAYS must be at least 0"),
    ):
        monkeypatch.setenv("INSPIRE_BACKDATE_DAYS", value)
        get_settings.cache_clear()
        try:
            with pytest.raises(ConfigurationError) as refused:
                get_settings()
            assert str(refused.value) == said
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()


def test_the_bound_defaults_to_thirty_days(monkeypatch):
    monkeypatch.delenv("INSPIRE_BACKDATE_DAYS", raising=False)
    get_settings.cache_clear()
    try:
        assert get_settings().backdate_days == 30
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
