"""'other' is never offered as a relationship and always refused as not domestic abuse."""

from __future__ import annotations

from datetime import date

import pytest

from programme.platform.tables import Role
from referrals.rules import OFFERED_RELATIONSHIPS, ReturnReason, check
from tests.builders import good_referral

AREAS = ("Rotherham",)
TODAY = date(2026, 10, 5)


def test_an_unreadable_relationship_is_offered_only_the_domestic_ones():
    checked = check(good_referral(relationship="neighbour"), today=TODAY, commissioned_areas=AREAS)
    (problem,) = [e for e in checked.errors if e.field == "relationship"]
    assert problem.code == "invalid"
    assert problem.message == "Expected one of: partner, ex_partner, family_member."
    assert "other" not in problem.message


def test_other_is_read_and_refused_as_not_domestic_abuse_naming_the_choices():
    checked = check(good_referral(relationship="other"), today=TODAY, commissioned_areas=AREAS)
    (problem,) = [e for e in checked.errors if e.field == "relationship"]
    assert problem.code == "not_domestic_abuse"
    assert checked.reasons == [ReturnReason.not_domestic_abuse]
    assert "partner, ex_partner, family_member" in problem.message
    assert "other" not in problem.message


@pytest.mark.parametrize("relationship", OFFERED_RELATIONSHIPS)
def test_every_offered_relationship_is_accepted(relationship):
    checked = check(good_referral(relationship=relationship), today=TODAY, commissioned_areas=AREAS)
    assert checked.submission is not None, checked.errors


@pytest.mark.anyio
async def test_the_api_document_offers_no_relationship_it_refuses(client, sign_in):
    schema = (await client.get("/schema/openapi.json")).json()
    offered = schema["components"]["schemas"]["ReferralSubmission"]["properties"]["relationship"]
    assert offered["enum"] == list(OFFERED_RELATIONSHIPS)
    referrer = await sign_in(Role.referrer)
    refused = await client.post(
        "/referrals", json=good_referral(relationship="other"), headers=referrer
    )
    assert refused.status_code == 422
    assert refused.json()["reasons"] == ["not_domestic_abuse"]
