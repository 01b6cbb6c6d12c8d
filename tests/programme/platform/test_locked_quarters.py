"""Reported quarters are locked: a later write dated in one is a 409 unless an admin says
why, and the quarterly report then marks the quarter revised since reported.

Q2 2026-27 (July to September 2026) is the reported quarter throughout.
"""

from __future__ import annotations

import json

import pytest

from programme.platform.tables import AuditEvent, Role
from referrals.tables import Referral, ReferralEvent, ReturnedReferral
from tests.builders import VICTIM, csv_person, csv_text, good_referral, inspire, run_import
from tests.counting import UNSUPPRESSED, app  # noqa: F401 - every count as it is

pytestmark = pytest.mark.anyio

REPORTED = "Q2 2026-27"
IN_IT = "2026-09-10"
AFTER = "2026-10-01"


@pytest.fixture
async def alice(sign_in):
    return await sign_in(Role.admin, "alice")


@pytest.fixture
async def lock(client, alice):
    async def _lock(quarter: str = REPORTED):
        response = await client.put(f"/reports/locked-quarters/{quarter}", headers=alice)
        assert response.status_code == 200, response.text
        return response.json()

    return _lock


async def referral_in(client, headers, received_on, **overrides):
    body = good_referral(received_on=received_on, consent_obtained_on=received_on, **overrides)
    return await client.post("/referrals", json=body, headers=headers)


async def quarterly_row(client, headers, quarter=REPORTED):
    report = await client.get(
        "/reports/quarterly", params={"from": "Q1 2026-27", "to": "Q3 2026-27"}, headers=headers
    )
    assert report.status_code == 200, report.text
    return next(row for row in report.json()["rows"] if row["quarter"] == quarter)


async def test_admins_lock_a_quarter_and_anyone_reporting_sees_who_and_when(
    client, alice, sign_in, lock
):
    locked = await lock()
    assert (locked["quarter"], locked["locked_by"], locked["status"]) == (
        REPORTED, "alice", "reported",
    )  # fmt: skip
    assert (locked["revisions"], locked["revised_at"]) == (0, None)
    again = await lock()
    assert again["locked_at"] == locked["locked_at"]
    monitor = await sign_in(Role.monitor, "mo")
    listed = await client.get("/reports/locked-quarters", headers=monitor)
    assert listed.status_code == 200
    assert [q["quarter"] for q in listed.json()] == [REPORTED]
    by_monitor = await client.put("/reports/locked-quarters/Q1 2026-27", headers=monitor)
    assert by_monitor.status_code == 403
    facilitator = await sign_in(Role.facilitator, "fran")
    assert (await client.get("/reports/locked-quarters", headers=facilitator)).status_code == 403
    audited = await AuditEvent.select(AuditEvent.action, AuditEvent.record_id).where(
        AuditEvent.record_type == "locked_quarter"
    )
    assert audited == [{"action": "create", "record_id": REPORTED}]


async def test_only_a_quarter_that_is_over_and_readable_can_be_locked(client, alice):
    current = await client.put("/reports/locked-quarters/Q4 2099-00", headers=alice)
    assert current.status_code == 422
    assert current.json()["errors"][0]["code"] == "quarter_not_over"
    unreadable = await client.put("/reports/locked-quarters/Q5 2026-27", headers=alice)
    assert unreadable.status_code == 422
    assert unreadable.json()["errors"][0]["field"] == "quarter"


async def test_a_referral_received_or_returned_in_a_locked_quarter_is_a_409(client, sign_in, lock):
    referrer = await sign_in(Role.referrer, "rita")
    await lock()
    accepted = await referral_in(client, referrer, IN_IT)
    assert accepted.status_code == 409, accepted.text
    (problem,) = accepted.json()["errors"]
    assert problem["code"] == "quarter_locked"
    assert accepted.json()["locked_quarters"] == [REPORTED]
    returned = await referral_in(client, referrer, IN_IT, consent_given=False)
    assert returned.status_code == 409
    assert returned.json()["errors"][0]["code"] == "quarter_locked"
    assert await Referral.count() == 0
    assert await ReturnedReferral.count() == 0
    later = await referral_in(client, referrer, AFTER)
    assert later.status_code == 201, later.text


async def test_an_event_in_a_locked_quarter_needs_an_admin_and_a_reason(
    client, sign_in, alice, lock
):
    referrer = await sign_in(Role.referrer, "rita")
    facilitator = await sign_in(Role.facilitator, "fran")
    referral_id = (await referral_in(client, referrer, "2026-09-01")).json()["id"]
    await lock()
    before = await quarterly_row(client, alice)
    assert before["reported"] == "reported"
    step = {"type": "contacted", "on": "2026-09-05"}
    path = f"/referrals/{referral_id}/events"
    assert (await client.post(path, json=step, headers=facilitator)).status_code == 409
    said = await client.post(
        path, json={**step, "override_reason": "I am sure"}, headers=facilitator
    )
    assert said.status_code == 409, "only an admin may override"
    unsaid = await client.post(path, json=step, headers=alice)
    assert unsaid.status_code == 409
    assert "override_reason" in unsaid.json()["detail"]
    assert await ReferralEvent.count().where(ReferralEvent.type == "contacted") == 0

    reason = "Contact log found after the Q2 return; commissioner agreed."
    overridden = await client.post(path, json={**step, "override_reason": reason}, headers=alice)
    assert overridden.status_code == 201, overridden.text
    audited = await AuditEvent.select(AuditEvent.detail).where(
        (AuditEvent.record_type == "locked_quarter") & (AuditEvent.action == "update")
    )
    (detail,) = [json.loads(a["detail"]) if isinstance(a["detail"], str) else a["detail"]
                 for a in audited]  # fmt: skip
    assert detail == {
        "override": True, "override_reason": reason, "record_type": "referral",
        "record_id": referral_id,
    }  # fmt: skip
    after = await quarterly_row(client, alice)
    assert after["reported"] == "revised since reported"
    assert after["contacted"] == before["contacted"] + 1
    listed = (await client.get("/reports/locked-quarters", headers=alice)).json()
    assert (listed[0]["status"], listed[0]["revisions"]) == ("revised since reported", 1)


async def test_the_report_marks_each_quarter_in_csv_and_json(client, alice, sign_in, lock):
    referrer = await sign_in(Role.referrer, "rita")
    await referral_in(client, referrer, "2026-05-01")
    await lock("Q1 2026-27")
    await lock()
    await client.post(
        "/referrals",
        json=good_referral(received_on=IN_IT, consent_obtained_on=IN_IT),
        headers=referrer,
    )  # refused: the quarter is locked
    rows = {r["quarter"]: r["reported"] for r in
            (await client.get("/reports/quarterly?from=Q1 2026-27&to=Q3 2026-27",
                              headers=alice)).json()["rows"]}  # fmt: skip
    assert rows == {"Q1 2026-27": "reported", REPORTED: "reported", "Q3 2026-27": "", "Total": ""}
    csv = await client.get(
        "/reports/quarterly?from=Q1 2026-27&to=Q3 2026-27&format=csv", headers=alice
    )
    lines = csv.text.splitlines()
    assert lines[0].endswith(",reported")
    assert lines[1].startswith("Q1 2026-27,") and lines[1].endswith(",reported")
    assert lines[3].startswith("Q3 2026-27,") and lines[3].endswith(",")


async def test_victim_feedback_dated_in_a_locked_quarter_is_a_409(client, sign_in, lock):
    referrer = await sign_in(Role.referrer, "rita")
    worker = await sign_in(Role.victim_worker, "vic")
    referral = await client.post(
        "/referrals", json=good_referral(victims=[VICTIM]), headers=referrer
    )
    victim = await client.get(f"/referrals/{referral.json()['id']}/victims", headers=worker)
    victim_id = victim.json()[0]["id"]
    await lock()
    feedback = {"stage": "intake", "behaviour": "reduced", "feels_safer": "yes"}
    refused = await client.post(
        f"/victims/{victim_id}/feedback", json={**feedback, "collected_on": "2026-09-30"},
        headers=worker,
    )  # fmt: skip
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["code"] == "quarter_locked"
    later = await client.post(
        f"/victims/{victim_id}/feedback", json={**feedback, "collected_on": "2026-10-02"},
        headers=worker,
    )  # fmt: skip
    assert later.status_code == 201, later.text
    # Moving that answer back into the reported quarter is refused too.
    moved = await client.post(
        f"/victims/{victim_id}/feedback", json={**feedback, "collected_on": "2026-09-30"},
        headers=worker,
    )  # fmt: skip
    assert moved.status_code == 409


async def test_an_import_into_a_locked_quarter_needs_a_reason(client, alice, lock):
    await lock()
    text = csv_text(
        [csv_person(1, received_on=IN_IT, consent_obtained_on=IN_IT), csv_person(2)]
    ).encode()
    refused = await client.post(
        "/imports/referrals?create_agencies=true", content=text, headers=alice
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["locked_quarters"] == [REPORTED]
    assert await Referral.count() == 0
    imported = await client.post(
        "/imports/referrals",
        params={
            "override_reason": "Late return from the police, agreed.",
            "create_agencies": "true",
        },
        content=text,
        headers=alice,
    )
    assert imported.status_code == 200, imported.text
    assert await Referral.count() == 2
    assert (await quarterly_row(client, alice))["reported"] == "revised since reported"


async def test_at_the_command_line_an_import_needs_a_reason_and_the_report_says_revised(
    tmp_path, client, lock
):
    await lock()
    text = csv_text([csv_person(1, received_on=IN_IT, consent_obtained_on=IN_IT)])
    refused = run_import(tmp_path, "referrals", text)
    assert refused.returncode != 0
    assert "Q2 2026-27" in refused.stderr and "override_reason" in refused.stderr
    assert await Referral.count() == 0
    imported = run_import(
        tmp_path, "referrals", text, "--override-reason", "Late police return, agreed."
    )
    assert imported.returncode == 0, imported.stderr
    assert "imported 1, returned 0" in imported.stdout
    report = inspire(
        "report", "quarterly", "--from", REPORTED, "--to", REPORTED, "--format", "csv",
        env=UNSUPPRESSED,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    header, row, _total = report.stdout.split("\n\n")[0].splitlines()
    assert header.endswith(",reported")
    assert row.startswith(f"{REPORTED},1,1,") and row.endswith(",revised since reported")


async def test_locking_a_quarter_waits_for_a_write_under_way_in_it(client):
    """A write that checked before the lock commits before the lock is taken: none lands
    unseen in a quarter already marked reported."""
    import asyncio
    from datetime import date

    from programme.platform.accounts.schemas import Principal
    from programme.platform.clock import today
    from programme.platform.database import engine
    from programme.platform.errors import QuarterLocked
    from programme.platform.locked_quarters import services
    from programme.platform.tables import RecordType
    from tests.builders import ADMIN

    checked, release = asyncio.Event(), asyncio.Event()

    async def write() -> None:
        async with engine().transaction():
            await services.require_unlocked(
                [date(2026, 9, 10)], actor=ADMIN, record_type=RecordType.referral
            )
            checked.set()
            await release.wait()

    writing = asyncio.create_task(write())
    await checked.wait()
    locking = asyncio.create_task(services.lock_quarter(REPORTED, ADMIN, today()))
    await asyncio.sleep(0.5)
    assert not locking.done(), "the lock must wait for the write to commit"
    release.set()
    await writing
    assert (await locking).quarter == REPORTED
    referrer = Principal(id=None, username="rita", role=Role.referrer.value)
    with pytest.raises(QuarterLocked):
        async with engine().transaction():
            await services.require_unlocked(
                [date(2026, 9, 10)], actor=referrer, record_type=RecordType.referral
            )
