"""Correcting a victim's/survivor's details and feedback: the earlier values kept,
encrypted, shown to victim workers (admins read-only, audited) and nobody else."""

from __future__ import annotations

import asyncpg
import pytest

from outcomes.tables import FeedbackVersion, VictimCorrection
from programme.platform import database
from programme.platform.tables import AuditEvent, Role
from tests.builders import VICTIM_TRACES

pytestmark = pytest.mark.anyio


async def raw_rows(table: str) -> list[str]:
    connection = await asyncpg.connect(**database.engine().config)
    try:
        return [r["row"] for r in await connection.fetch(f'SELECT t::text AS row FROM "{table}" t')]
    finally:
        await connection.close()


async def correct(client, headers, victim_id, **body):
    return await client.patch(f"/victims/{victim_id}", json=body, headers=headers)


async def test_a_victim_worker_corrects_details_and_the_history_keeps_the_earlier_ones(
    client, victim_id, victim_worker
):
    response = await correct(
        client, victim_worker, victim_id,
        last_name="Survivorsen", phone="0114 496 0777", reason="She spelt it for me",
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert (response.json()["last_name"], response.json()["phone"]) == (
        "Survivorsen", "+441144960777",
    )  # fmt: skip
    history = await client.get(f"/victims/{victim_id}/history", headers=victim_worker)
    assert history.status_code == 200
    (entry,) = history.json()["entries"]
    assert (entry["by"], entry["reason"]) == ("vic", "She spelt it for me")
    assert {c["field"]: (c["old"], c["new"]) for c in entry["changes"]} == {
        "last_name": ("Survivorson", "Survivorsen"),
        "phone": ("+441144960888", "+441144960777"),
    }


async def test_the_earlier_values_and_the_reason_are_encrypted_at_rest(
    client, victim_id, victim_worker
):
    await correct(client, victim_worker, victim_id, last_name="Survivorsen", reason="Her words")
    for row in await raw_rows("victim_correction") + await raw_rows("victim"):
        for trace in (*VICTIM_TRACES, "Survivorsen", "Her words"):
            assert trace not in row
    audit = await AuditEvent.select(AuditEvent.detail).where(AuditEvent.record_id == victim_id)
    assert "Survivor" not in str(audit)


async def test_every_problem_is_listed_and_nothing_is_written(client, victim_id, victim_worker):
    response = await correct(
        client, victim_worker, victim_id,
        phone="999", relationship="neighbour", consent_to_contact=False, colour="red",
    )  # fmt: skip
    assert response.status_code == 422
    assert {(e["code"], e["field"]) for e in response.json()["errors"]} == {
        ("required", "reason"),
        ("invalid", "phone"),
        ("invalid", "relationship"),
        ("not_correctable", "consent_to_contact"),
        ("unknown_field", "colour"),
    }
    assert await VictimCorrection.count() == 0


async def test_an_unchanged_correction_writes_nothing(client, victim_id, victim_worker):
    response = await correct(client, victim_worker, victim_id, relationship="partner", reason="x")
    assert response.status_code == 200
    assert await VictimCorrection.count() == 0


async def test_admins_read_the_history_audited_but_never_correct(client, sign_in, victim_id):
    admin = await sign_in(Role.admin, "ada")
    assert (await correct(client, admin, victim_id, last_name="X", reason="x")).status_code == 403
    assert (await client.get(f"/victims/{victim_id}/history", headers=admin)).status_code == 200
    reads = await AuditEvent.select(AuditEvent.detail).where(
        (AuditEvent.record_id == victim_id) & (AuditEvent.username == "ada")
    )
    assert any("history" in str(r["detail"]) for r in reads)


@pytest.mark.parametrize("role", [Role.referrer, Role.facilitator, Role.monitor])
async def test_no_other_role_corrects_or_reads_the_history(client, sign_in, victim_id, role):
    headers = await sign_in(role, f"someone-{role.value}")
    assert (await correct(client, headers, victim_id, last_name="X", reason="x")).status_code == 403
    assert (await client.get(f"/victims/{victim_id}/history", headers=headers)).status_code == 403


async def test_an_unknown_victim_is_not_found(client, victim_worker):
    missing = "00000000-0000-0000-0000-000000000000"
    assert (
        await correct(client, victim_worker, missing, last_name="X", reason="x")
    ).status_code == 404
    assert (
        await client.get(f"/victims/{missing}/history", headers=victim_worker)
    ).status_code == 404


FEEDBACK = {
    "stage": "intake",
    "collected_on": "2026-10-05",
    "behaviour": "reduced",
    "feels_safer": "yes",
    "note": "First note",
}


async def test_a_feedback_correction_keeps_the_note_it_replaces(client, victim_id, victim_worker):
    url = f"/victims/{victim_id}/feedback"
    assert (await client.post(url, json=FEEDBACK, headers=victim_worker)).status_code == 201
    corrected = FEEDBACK | {"behaviour": "stopped", "note": "Second note", "reason": "Misheard"}
    response = await client.post(url, json=corrected, headers=victim_worker)
    assert response.status_code == 201, response.text
    (current,) = (await client.get(url, headers=victim_worker)).json()
    assert (current["behaviour"], current["note"]) == ("stopped", "Second note")
    (earlier,) = current["earlier"]
    assert (earlier["behaviour"], earlier["note"], earlier["reason"]) == (
        "reduced", "First note", "Misheard",
    )  # fmt: skip
    assert (earlier["recorded_by"], earlier["replaced_by"]) == ("vic", "vic")
    for row in await raw_rows("feedback_version"):
        assert "First note" not in row and "Misheard" not in row


async def test_every_version_is_kept_newest_first_and_a_repeat_keeps_nothing_new(
    client, victim_id, victim_worker
):
    url = f"/victims/{victim_id}/feedback"
    for note in ("One", "Two", "Three", "Three"):
        response = await client.post(url, json=FEEDBACK | {"note": note}, headers=victim_worker)
        assert response.status_code == 201
    (current,) = (await client.get(url, headers=victim_worker)).json()
    assert current["note"] == "Three"
    assert [v["note"] for v in current["earlier"]] == ["Two", "One"]
    assert await FeedbackVersion.count() == 2


async def test_reports_count_only_the_current_feedback(client, victim_id, victim_worker):
    from datetime import date

    from analysis.queries import FEEDBACK_SQL

    url = f"/victims/{victim_id}/feedback"
    await client.post(url, json=FEEDBACK, headers=victim_worker)
    await client.post(url, json=FEEDBACK | {"behaviour": "worse"}, headers=victim_worker)
    (row,) = await database.fetch(FEEDBACK_SQL, date(2026, 10, 1), date(2026, 12, 31))
    assert (row["responded"], row["improved"]) == (1, 0)
