"""Victims/survivors: encrypted at rest, seen by victim workers only, consent-gated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

from outcomes.tables import Feedback, Victim
from programme.platform import database
from programme.platform.crypto import cipher
from programme.platform.settings import ConfigurationError, get_settings
from programme.platform.tables import AuditEvent, Role
from tests.builders import VICTIM, VICTIM_TRACES, good_referral

pytestmark = pytest.mark.anyio


async def raw_rows(table: str) -> list[str]:
    connection = await asyncpg.connect(**database.engine().config)
    try:
        return [r["row"] for r in await connection.fetch(f'SELECT t::text AS row FROM "{table}" t')]
    finally:
        await connection.close()


@contextmanager
def no_encryption_key() -> Iterator[None]:
    """As on a real server (DATABASE_URL) whose INSPIRE_ENCRYPTION_KEY is not set."""
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("DATABASE_URL", database.database_url())
            env.delenv("INSPIRE_ENCRYPTION_KEY", raising=False)
            get_settings.cache_clear()
            cipher.cache_clear()
            yield
    finally:
        # Settings are read once per process: make the next test read the real ones.
        get_settings.cache_clear()
        cipher.cache_clear()


async def test_a_referral_naming_no_victim_does_not_need_the_encryption_key(client, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    with no_encryption_key():
        with pytest.raises(ConfigurationError, match="INSPIRE_ENCRYPTION_KEY"):
            cipher()
        response = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert response.status_code == 201, response.text
    assert await Victim.count() == 0


@pytest.mark.smoke
async def test_a_referrer_names_a_victim_and_never_gets_the_details_back(client, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    response = await client.post(
        "/referrals", json=good_referral(victims=[VICTIM]), headers=referrer
    )
    assert response.status_code == 201, response.text
    assert response.json()["victims_recorded"] == 1
    assert "victims" not in [m["field"] for m in response.json()["quality"]["missing"]]
    for trace in VICTIM_TRACES:
        assert trace not in response.text
    detail = await client.get(f"/referrals/{response.json()['id']}", headers=referrer)
    for trace in VICTIM_TRACES:
        assert trace not in detail.text


async def test_victim_details_and_notes_are_encrypted_at_rest(client, victim_id, victim_worker):
    feedback = {
        "stage": "intake",
        "collected_on": "2026-10-05",
        "behaviour": "reduced",
        "feels_safer": "yes",
        "note": "He checks my phone every night",
    }
    response = await client.post(
        f"/victims/{victim_id}/feedback", json=feedback, headers=victim_worker
    )
    assert response.status_code == 201, response.text
    for table in ("victim", "feedback", "contact_consent"):
        for row in await raw_rows(table):
            for trace in (*VICTIM_TRACES, "+441144960888", "checks my phone"):
                assert trace not in row, (table, trace)
    assert await Victim.count() == 1 and await Feedback.count() == 1


async def test_victim_workers_read_the_details_decrypted(client, victim_id, victim_worker):
    victim = (await client.get(f"/victims/{victim_id}", headers=victim_worker)).json()
    assert (victim["first_name"], victim["last_name"]) == ("Verity", "Survivorson")
    assert victim["phone"] == "+441144960888"
    assert victim["may_contact"] is True
    assert victim["consent"] == {"given": True, "obtained_on": "2026-09-29", "withdrawn_on": None}


async def test_every_victim_route_is_403_for_other_roles(
    client, victim_id, referral_with_victim, sign_in
):
    paths = [
        ("GET", f"/referrals/{referral_with_victim}/victims"),
        ("POST", f"/referrals/{referral_with_victim}/victims"),
        ("GET", f"/victims/{victim_id}"),
        ("POST", f"/victims/{victim_id}/consent"),
        ("POST", f"/victims/{victim_id}/feedback"),
        ("GET", f"/victims/{victim_id}/feedback"),
        ("GET", f"/victims/{victim_id}/progress"),
    ]
    for role in (Role.referrer, Role.facilitator, Role.monitor):
        headers = await sign_in(role, f"{role.value}-nosy")
        for method, path in paths:
            response = await client.request(method, path, json={}, headers=headers)
            assert response.status_code == 403, (role, method, path)


async def test_admin_reads_of_victim_records_are_audited(client, victim_id, sign_in):
    admin = await sign_in(Role.admin, "alice")
    response = await client.get(f"/victims/{victim_id}", headers=admin)
    assert response.status_code == 200
    reads = await AuditEvent.count().where(
        (AuditEvent.record_type == "victim")
        & (AuditEvent.action == "read")
        & (AuditEvent.username == "alice")
        & (AuditEvent.record_id == victim_id)
    )
    assert reads == 1


async def test_no_feedback_without_consent_to_contact(client, referral_with_victim, victim_worker):
    added = await client.post(
        f"/referrals/{referral_with_victim}/victims",
        json={
            "first_name": "Nora",
            "relationship": "ex_partner",
            "consent_to_contact": False,
            "consent_obtained_on": "2026-10-01",
        },
        headers=victim_worker,
    )
    assert added.status_code == 201, added.text
    assert added.json()["may_contact"] is False
    feedback = {
        "stage": "intake",
        "collected_on": "2026-10-05",
        "behaviour": "same",
        "feels_safer": "no",
    }
    refused = await client.post(
        f"/victims/{added.json()['id']}/feedback", json=feedback, headers=victim_worker
    )
    assert refused.status_code == 409


async def test_consent_is_withdrawable_and_then_nothing_more_is_recorded(
    client, victim_id, victim_worker
):
    withdrawn = await client.post(
        f"/victims/{victim_id}/consent",
        json={"given": True, "on": "2026-10-10", "withdraw": True},
        headers=victim_worker,
    )
    assert withdrawn.status_code == 201, withdrawn.text
    assert withdrawn.json()["consent"]["withdrawn_on"] == "2026-10-10"
    assert withdrawn.json()["may_contact"] is False
    feedback = {
        "stage": "midpoint",
        "collected_on": "2026-10-12",
        "behaviour": "same",
        "feels_safer": "unsure",
    }
    response = await client.post(
        f"/victims/{victim_id}/feedback", json=feedback, headers=victim_worker
    )
    assert response.status_code == 409
    again = await client.post(
        f"/victims/{victim_id}/consent",
        json={"given": True, "on": "2026-10-20"},
        headers=victim_worker,
    )
    assert again.json()["may_contact"] is True


async def test_one_feedback_per_stage_and_a_correction_replaces_it(
    client, victim_id, victim_worker
):
    first = {
        "stage": "exit",
        "collected_on": "2026-10-05",
        "behaviour": "same",
        "feels_safer": "no",
    }
    corrected = first | {"behaviour": "reduced", "feels_safer": "yes", "note": "Better now"}
    assert (
        await client.post(f"/victims/{victim_id}/feedback", json=first, headers=victim_worker)
    ).status_code == 201
    response = await client.post(
        f"/victims/{victim_id}/feedback", json=corrected, headers=victim_worker
    )
    assert response.status_code == 201
    assert response.json()["behaviour"] == "reduced"
    listed = (await client.get(f"/victims/{victim_id}/feedback", headers=victim_worker)).json()
    assert [(f["stage"], f["behaviour"], f["note"]) for f in listed] == [
        ("exit", "reduced", "Better now")
    ]
    updates = await AuditEvent.count().where(
        (AuditEvent.record_type == "victim_feedback") & (AuditEvent.action == "update")
    )
    assert updates == 1


async def test_bad_feedback_lists_every_problem(client, victim_id, victim_worker):
    response = await client.post(
        f"/victims/{victim_id}/feedback",
        json={
            "stage": "later",
            "collected_on": "2026-13-01",
            "behaviour": "better",
            "feels_safer": "maybe",
        },
        headers=victim_worker,
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "stage",
        "collected_on",
        "behaviour",
        "feels_safer",
    }
    future = await client.post(
        f"/victims/{victim_id}/feedback",
        json={
            "stage": "intake",
            "collected_on": "2099-01-01",
            "behaviour": "same",
            "feels_safer": "no",
        },
        headers=victim_worker,
    )
    assert future.status_code == 422


async def test_bad_victim_details_are_422_without_returning_the_referral(client, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    bad = {
        "first_name": "",
        "phone": "12345",
        "relationship": "neighbour",
        "consent_to_contact": "y",
    }
    response = await client.post("/referrals", json=good_referral(victims=[bad]), headers=referrer)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "victims[0].first_name",
        "victims[0].phone",
        "victims[0].relationship",
        "victims[0].consent_to_contact",
    }
    assert "returned_referral_id" not in response.json()


async def test_victim_workers_see_the_programme_status_and_alerts(
    client, victim_id, referral_with_victim, victim_worker, sign_in
):
    facilitator = await sign_in(Role.facilitator, "fran")
    await client.post(
        f"/referrals/{referral_with_victim}/events",
        json={"type": "contacted", "on": "2026-10-02"},
        headers=facilitator,
    )
    await client.post(
        f"/referrals/{referral_with_victim}/events",
        json={"type": "disengaged", "on": "2026-10-09"},
        headers=facilitator,
    )
    progress = (await client.get(f"/victims/{victim_id}/progress", headers=victim_worker)).json()
    assert (progress["status"], progress["status_on"]) == ("disengaged", "2026-10-09")
    assert progress["alerts"] == [
        {"kind": "disengaged", "raised_on": "2026-10-09", "withdrawn_on": None}
    ]
