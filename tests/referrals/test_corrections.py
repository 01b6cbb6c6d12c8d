"""Correcting a referral: the intake rules on the corrected record, the same-person
check, the earlier values kept (encrypted) with who, when and why, and who may."""

from __future__ import annotations

import pytest

from programme.platform.tables import AuditEvent, Role
from referrals.tables import Person, ReferralCorrection
from tests.builders import distinct_referral, good_referral

pytestmark = pytest.mark.anyio


@pytest.fixture
async def facilitator(sign_in):
    return await sign_in(Role.facilitator, "fran")


@pytest.fixture
async def referrer(sign_in):
    return await sign_in(Role.referrer, "rita")


@pytest.fixture
async def referral_id(client, referrer):
    response = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def correct(client, headers, referral_id, **body):
    return await client.patch(f"/referrals/{referral_id}", json=body, headers=headers)


async def test_a_correction_changes_the_record_and_keeps_the_earlier_values(
    client, facilitator, referral_id
):
    response = await correct(
        client, facilitator, referral_id,
        last_name="Testpersonne", phone="0114 496 0456", risk_level="high",
        reason="Spelling confirmed on the first call",
    )  # fmt: skip
    assert response.status_code == 200, response.text
    record = response.json()
    assert (record["last_name"], record["phone"], record["risk_level"]) == (
        "Testpersonne", "+441144960456", "high",
    )  # fmt: skip
    history = (await client.get(f"/referrals/{referral_id}/history", headers=facilitator)).json()
    (entry,) = history["entries"]
    assert entry["kind"] == "correction"
    assert entry["by"] == "fran"
    assert entry["reason"] == "Spelling confirmed on the first call"
    assert {c["field"]: (c["old"], c["new"]) for c in entry["changes"]} == {
        "last_name": ("Testperson", "Testpersonne"),
        "phone": ("+441144960123", "+441144960456"),
        "risk_level": ("medium", "high"),
    }


async def test_the_earlier_values_are_stored_encrypted_and_audit_names_fields_only(
    client, facilitator, referral_id
):
    await correct(client, facilitator, referral_id, first_name="Jordanna", reason="Typo")
    (row,) = await ReferralCorrection.select()
    assert "Jordan" not in row["changes"]
    assert row["fields"] in (["first_name"], '["first_name"]')
    audit = await AuditEvent.select().where(
        (AuditEvent.record_id == referral_id) & (AuditEvent.action == "update")
    )
    assert audit and "Jordan" not in str(audit)
    assert audit[0]["detail"] in ({"correction": ["first_name"]}, '{"correction": ["first_name"]}')


async def test_the_person_is_found_by_the_corrected_name_afterwards(
    client, facilitator, referrer, referral_id
):
    await correct(client, facilitator, referral_id, first_name="Jordanna", reason="Typo")
    (person,) = await Person.select(Person.match_key)
    assert person["match_key"].startswith("testperson|jordanna|")
    again = await client.post(
        "/referrals", json=good_referral(first_name="Jordanna", phone="0114 496 0999"),
        headers=referrer,
    )  # fmt: skip
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "already_referred"


async def test_a_reason_is_required_and_every_problem_is_listed_at_once(
    client, facilitator, referral_id
):
    response = await correct(
        client, facilitator, referral_id,
        reference="NEW-REF", victims=[], shoe_size=9, phone="999",
        date_of_birth="2015-01-01",
    )  # fmt: skip
    assert response.status_code == 422
    problems = {(e["code"], e["field"]) for e in response.json()["errors"]}
    assert problems == {
        ("required", "reason"),
        ("not_correctable", "reference"),
        ("not_correctable", "victims"),
        ("unknown_field", "shoe_size"),
        ("invalid", "phone"),
        ("under_16", "date_of_birth"),
    }


async def test_the_intake_rules_apply_to_the_corrected_record(client, facilitator, referral_id):
    response = await correct(
        client, facilitator, referral_id,
        consent_obtained_on="2026-10-05", local_authority="Leeds", relationship="other",
        first_name=None, reason="Checked",
    )  # fmt: skip
    assert response.status_code == 422
    codes = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert codes == {
        "consent_obtained_on": "consent_missing",
        "local_authority": "out_of_area",
        "relationship": "not_domestic_abuse",
        "first_name": "required",
    }
    assert await ReferralCorrection.count() == 0


async def test_an_empty_correction_is_refused_and_an_unchanged_one_writes_nothing(
    client, facilitator, referral_id
):
    empty = await correct(client, facilitator, referral_id, reason="Nothing")
    assert empty.status_code == 422
    same = await correct(client, facilitator, referral_id, risk_level="medium", reason="Same")
    assert same.status_code == 200
    assert await ReferralCorrection.count() == 0


async def test_optional_details_can_be_cleared(client, facilitator, referral_id):
    response = await correct(client, facilitator, referral_id, notes=None, reason="Wrong person")
    assert response.status_code == 200, response.text
    assert response.json()["notes"] is None


async def test_correcting_into_another_open_referrals_person_is_a_conflict(
    client, facilitator, referrer, referral_id
):
    other = await client.post("/referrals", json=distinct_referral(7), headers=referrer)
    assert other.status_code == 201
    body = distinct_referral(7)
    response = await correct(
        client, facilitator, referral_id,
        first_name=body["first_name"], last_name=body["last_name"],
        date_of_birth=body["date_of_birth"], reason="Looked up",
    )  # fmt: skip
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "already_referred"
    assert response.json()["existing_reference"] == other.json()["reference"]


async def test_correcting_into_a_person_with_no_open_referral_is_not_a_merge(
    client, facilitator, referrer, referral_id
):
    other = await client.post("/referrals", json=distinct_referral(7), headers=referrer)
    closed = await client.post(
        f"/referrals/{other.json()['id']}/events",
        json={"type": "closed", "on": "2026-10-03"}, headers=facilitator,
    )  # fmt: skip
    assert closed.status_code == 201
    body = distinct_referral(7)
    response = await correct(
        client, facilitator, referral_id,
        first_name=body["first_name"], last_name=body["last_name"],
        date_of_birth=body["date_of_birth"], reason="Looked up",
    )  # fmt: skip
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "same_person"


async def test_a_corrected_received_date_moves_the_acceptance_but_not_past_contact(
    client, facilitator, referral_id
):
    moved = await correct(client, facilitator, referral_id, received_on="2026-10-02", reason="x")
    assert moved.status_code == 200, moved.text
    record = moved.json()
    assert (record["received_on"], record["status_on"]) == ("2026-10-02", "2026-10-02")
    assert record["timeline"][0]["on"] == "2026-10-02"
    await client.post(
        f"/referrals/{referral_id}/events",
        json={"type": "contacted", "on": "2026-10-04"}, headers=facilitator,
    )  # fmt: skip
    late = await correct(client, facilitator, referral_id, received_on="2026-10-05", reason="x")
    assert late.status_code == 422
    assert late.json()["errors"][0]["code"] == "after_later_milestone"


async def test_a_withdrawn_referral_is_not_corrected(client, facilitator, referral_id):
    await client.post(
        f"/referrals/{referral_id}/events",
        json={"type": "withdrawn", "on": "2026-10-03"}, headers=facilitator,
    )  # fmt: skip
    response = await correct(client, facilitator, referral_id, risk_level="high", reason="x")
    assert response.status_code == 409


@pytest.mark.parametrize("role", [Role.referrer, Role.monitor, Role.victim_worker])
async def test_only_facilitators_and_admins_correct_or_read_the_history(
    client, sign_in, referral_id, role
):
    headers = await sign_in(role, f"someone-{role.value}")
    changed = await correct(client, headers, referral_id, risk_level="high", reason="x")
    assert changed.status_code == 403
    history = await client.get(f"/referrals/{referral_id}/history", headers=headers)
    assert history.status_code == 403
    assert await ReferralCorrection.count() == 0


async def test_an_admin_corrects_and_every_history_read_is_audited(client, sign_in, referral_id):
    admin = await sign_in(Role.admin, "ada")
    assert (
        await correct(client, admin, referral_id, risk_level="high", reason="x")
    ).status_code == 200
    assert (await client.get(f"/referrals/{referral_id}/history", headers=admin)).status_code == 200
    reads = await AuditEvent.select(AuditEvent.detail).where(
        (AuditEvent.record_id == referral_id) & (AuditEvent.action == "read")
    )
    assert any("history" in str(r["detail"]) for r in reads)


async def test_an_unknown_referral_is_not_found(client, facilitator):
    missing = "00000000-0000-0000-0000-000000000000"
    assert (
        await correct(client, facilitator, missing, risk_level="high", reason="x")
    ).status_code == 404
    assert (
        await client.get(f"/referrals/{missing}/history", headers=facilitator)
    ).status_code == 404
