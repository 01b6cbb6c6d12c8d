"""GET /returned-referrals/{id}: a refused referral, opened by its own agency and admins.

Reasons, date and agency; nothing about the person, which was never kept.
"""

from __future__ import annotations

import uuid

import pytest

from programme.platform.tables import AuditEvent, Role
from tests.builders import good_referral

pytestmark = pytest.mark.anyio


@pytest.fixture
async def returned(client, sign_in):
    rita = await sign_in(Role.referrer, "rita")
    response = await client.post(
        "/referrals",
        json=good_referral(consent_given=False, local_authority="Leeds"),
        headers=rita,
    )
    assert response.status_code == 422, response.text
    return response.json()["returned_referral_id"], rita


async def test_its_referrer_opens_it_reasons_date_agency_and_no_person(client, returned):
    returned_id, rita = returned
    response = await client.get(f"/returned-referrals/{returned_id}", headers=rita)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == returned_id
    assert body["agency"] == "South Yorkshire Police"
    assert body["received_on"] == "2026-10-01"
    assert sorted(body["reasons"]) == ["consent_missing", "out_of_area"]
    assert body["source"] == "api" and body["submitted_by"] == "rita"
    for trace in ("Jordan", "Testperson", "1990-05-17", "496", "weekday"):
        assert trace not in response.text


async def test_the_same_agency_and_admins_open_it_and_each_read_is_audited(
    client, sign_in, returned
):
    returned_id, _ = returned
    colleague = await sign_in(Role.referrer, "ravi")  # same agency
    admin = await sign_in(Role.admin, "alice")
    for headers in (colleague, admin):
        response = await client.get(f"/returned-referrals/{returned_id}", headers=headers)
        assert response.status_code == 200, response.text
    reads = await AuditEvent.select(AuditEvent.username).where(
        (AuditEvent.record_type == "returned_referral")
        & (AuditEvent.action == "read")
        & (AuditEvent.record_id == returned_id)
    )
    assert sorted(r["username"] for r in reads) == ["alice", "ravi"]


async def test_another_agency_gets_the_same_404_as_for_none(client, sign_in, returned):
    returned_id, _ = returned
    probation = await sign_in(Role.referrer, "pat", agency="Probation")
    theirs = await client.get(f"/returned-referrals/{returned_id}", headers=probation)
    missing = await client.get(f"/returned-referrals/{uuid.uuid4()}", headers=probation)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()


@pytest.mark.parametrize("role", [Role.facilitator, Role.monitor, Role.victim_worker])
async def test_other_roles_may_not_open_it(client, sign_in, returned, role):
    returned_id, _ = returned
    headers = await sign_in(role)
    response = await client.get(f"/returned-referrals/{returned_id}", headers=headers)
    assert response.status_code == 403
    assert (await client.get(f"/returned-referrals/{returned_id}")).status_code == 401
