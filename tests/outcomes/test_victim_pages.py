"""The victim workers' pages over HTTP, as a browser sends them: the victims they support
with consent and the perpetrator's alerts, a victim's page, consent and feedback; every read
audited as the API audits it; no other role reaches any of it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from programme.platform.clock import today
from programme.platform.tables import AuditEvent, Role
from referrals.tables import ParticipantAlert
from tests.builders import VICTIM, VICTIM_TRACES, good_referral
from tests.programme.web.helpers import browser, make_account, submit
from tests.programme.web.helpers import sign_in as sign_in_page

pytestmark = pytest.mark.anyio


def _date(prefix: str, day: date) -> dict[str, str]:
    return {
        f"{prefix}-day": str(day.day),
        f"{prefix}-month": str(day.month),
        f"{prefix}-year": str(day.year),
    }


@pytest.fixture
async def supported(client, sign_in):
    """A referral, and a victim the worker 'vic' recorded (so supports)."""
    referrer = await sign_in(Role.referrer, "rita")
    response = await client.post("/referrals", json=good_referral(), headers=referrer)
    assert response.status_code == 201, response.text
    referral_id = response.json()["id"]
    await make_account("vic", Role.victim_worker)
    from tests.builders import log_in

    worker = await log_in(client, "vic")
    added = await client.post(f"/referrals/{referral_id}/victims", json=VICTIM, headers=worker)
    assert added.status_code == 201, added.text
    return referral_id, added.json()["id"]


async def test_the_list_shows_consent_status_and_the_at_risk_alert(app, client, supported):
    referral_id, victim_id = supported
    await ParticipantAlert.insert(
        ParticipantAlert(referral=referral_id, kind="at_risk", raised_on=today())
    )
    async with browser(app) as http:
        await sign_in_page(http, "vic")
        page = await http.get("/partner-support")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert "Verity Survivorson" in page.text
        assert f"/partner-support/{victim_id}" in page.text
        assert "Given on 29 Sep 2026" in page.text
        assert "At risk" in page.text and "new referral" in page.text
    reads = await AuditEvent.select().where(
        (AuditEvent.record_id == victim_id) & (AuditEvent.action == "read")
    )
    assert any('"caseload"' in r["detail"] for r in reads)


async def test_a_victims_page_records_consent_and_feedback_with_corrections(app, client, supported):
    _, victim_id = supported
    now = today()
    path = f"/partner-support/{victim_id}"
    async with browser(app) as http:
        await sign_in_page(http, "vic")
        page = await http.get(path)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert "4960888" in page.text.replace(" ", "")

        withdrawn = await submit(
            http, path, path + "/consent", choice="withdraw", **_date("on", now)
        )
        assert withdrawn.status_code == 303
        page = await http.get(path)
        assert f"Withdrawn on {now.day} {now:%b %Y}" in page.text
        refused = await submit(
            http,
            path,
            path + "/feedback",
            stage="intake",
            behaviour="reduced",
            feels_safer="yes",
            **_date("collected_on", now),
        )
        assert refused.status_code == 409
        assert "No feedback without consent" in refused.text

        given = await submit(http, path, path + "/consent", choice="give", **_date("on", now))
        assert given.status_code == 303
        for stage, behaviour in (("intake", "same"), ("midpoint", "reduced")):
            sent = await submit(
                http,
                path,
                path + "/feedback",
                stage=stage,
                behaviour=behaviour,
                feels_safer="unsure",
                note="",
                reason="",
                **_date("collected_on", now - timedelta(days=1)),
            )
            assert sent.status_code == 303, sent.text
        corrected = await submit(
            http,
            path,
            path + "/feedback",
            stage="midpoint",
            behaviour="stopped",
            feels_safer="yes",
            reason="misheard on the phone",
            **_date("collected_on", now),
        )
        assert corrected.status_code == 303
        page = await http.get(path)
        assert "Corrected: it replaced" in page.text
        assert "misheard on the phone" in page.text
        assert "<del>" in page.text and "Stopped" in page.text

        problems = await submit(http, path, path + "/feedback", stage="exit")
        assert problems.status_code == 422
        for message in ("Enter the date of the feedback", "Choose whether the victim feels safer"):
            assert message in problems.text
        future = await submit(
            http, path, path + "/consent", choice="give", **_date("on", now + timedelta(days=3))
        )
        assert future.status_code == 422 and 'href="#on-day"' in future.text

    actions = {
        (r["action"], r["record_type"])
        for r in await AuditEvent.select().where(AuditEvent.username == "vic")
    }
    assert {
        ("read", "victim"),
        ("read", "victim_feedback"),
        ("read", "referral"),
        ("update", "victim"),
        ("create", "victim_feedback"),
        ("update", "victim_feedback"),
    } <= actions


async def test_no_other_role_reaches_the_victim_pages(app, client, supported):
    _, victim_id = supported
    for role in (Role.admin, Role.referrer, Role.facilitator, Role.monitor):
        await make_account(f"{role.value}-x", role)
        async with browser(app) as http:
            await sign_in_page(http, f"{role.value}-x")
            home = await http.get("/")
            assert "/partner-support" not in home.text
            for path in ("/partner-support", f"/partner-support/{victim_id}"):
                page = await http.get(path)
                assert page.status_code == 403, (role, path)
                assert not any(trace in page.text for trace in VICTIM_TRACES)
            token = (await http.get("/")).text
            from tests.programme.web.helpers import csrf_from

            posted = await http.post(
                f"/partner-support/{victim_id}/consent",
                data={"_csrf_token": csrf_from(token), "choice": "withdraw"},
            )
            assert posted.status_code == 403
    async with browser(app) as http:
        assert (await http.get("/partner-support")).status_code == 303  # to sign in
