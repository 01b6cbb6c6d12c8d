"""The admins' pages over HTTP, as a browser sends them: accounts, agencies, programme
settings, the audit trail and its download. Admins only; each calls the API's service."""

from __future__ import annotations

import csv
import io
import re

import pytest

from programme.platform.tables import Account, AuditEvent, Role
from tests.builders import VICTIM, VICTIM_TRACES, good_referral, log_in
from tests.programme.web.helpers import browser, csrf_from, make_account, submit
from tests.programme.web.helpers import sign_in as sign_in_page

pytestmark = pytest.mark.anyio

ADMIN_PAGES = (
    "/admin/accounts",
    "/admin/accounts/new",
    "/admin/agencies",
    "/admin/settings",
    "/admin/audit",
    "/admin/audit/download",
)

TEMPORARY = re.compile(r'id="temporary-password">([a-z0-9-]+)<')


async def _id(username: str) -> str:
    row = await Account.select(Account.id).where(Account.username == username).first()
    return str(row["id"])


async def test_only_admins_open_the_admin_pages(app, clean_database):
    await make_account("alice", Role.admin)
    others = [Role.referrer, Role.facilitator, Role.victim_worker, Role.monitor]
    for role in others:
        await make_account(f"{role.value}-x", role)
    alice = await _id("alice")
    for role in others:
        async with browser(app) as http:
            await sign_in_page(http, f"{role.value}-x")
            home = await http.get("/")
            assert "/admin/" not in home.text
            for path in (*ADMIN_PAGES, f"/admin/accounts/{alice}"):
                assert (await http.get(path)).status_code == 403, (role, path)
            token = csrf_from(home.text)
            for action in ("deactivate", "reset-password", "unlock", "role"):
                posted = await http.post(
                    f"/admin/accounts/{alice}/{action}",
                    data={"_csrf_token": token, "role": "monitor"},
                )
                assert posted.status_code == 403, (role, action)
    row = await Account.select().where(Account.username == "alice").first()
    assert row["active"] and row["role"] == "admin" and not row["must_change_password"]


async def test_an_admin_adds_an_account_who_must_then_choose_a_password(app, clean_database):
    await make_account("alice", Role.admin)
    async with browser(app) as http:
        await sign_in_page(http, "alice")
        bad = await submit(http, "/admin/accounts/new", username="", role="referrer")
        assert bad.status_code == 422
        assert "Enter a username" in bad.text and "must belong to an agency" in bad.text
        added = await submit(
            http,
            "/admin/accounts/new",
            username="Rita",
            role="referrer",
            agency="",
        )
        assert added.status_code == 422
        await submit(http, "/admin/agencies", name="South Yorkshire Police")
        added = await submit(
            http,
            "/admin/accounts/new",
            username="Rita",
            role="referrer",
            agency="South Yorkshire Police",
        )
        assert added.status_code == 303
        page = await http.get(added.headers["location"])
        temporary = TEMPORARY.search(page.text).group(1)
        assert "South Yorkshire Police" in page.text
        again = await http.get(added.headers["location"])
        assert temporary not in again.text  # shown once
        taken = await submit(
            http, "/admin/accounts/new", username="rita", role="monitor", agency=""
        )
        assert taken.status_code == 409 and "That username is taken" in taken.text
    async with browser(app) as http:
        signed = await sign_in_page(http, "rita", temporary)
        assert signed.status_code == 303
        assert (await http.get("/our-referrals")).headers["location"] == (
            "/account/password?reset=1"
        )


async def test_an_admin_changes_a_role_resets_unlocks_and_deactivates(app, client, clean_database):
    await make_account("alice", Role.admin)
    await make_account("fran", Role.facilitator)
    fran = await _id("fran")
    token = await log_in(client, "fran")
    path = f"/admin/accounts/{fran}"
    async with browser(app) as http:
        await sign_in_page(http, "alice")
        changed = await submit(http, path, path + "/role", role="victim_worker", agency="")
        assert changed.status_code == 303
        assert "Role changed to victim worker" in (await http.get(path)).text
        assert (await client.get("/auth/me", headers=token)).status_code == 401

        reset = await submit(http, path, path + "/reset-password")
        assert reset.status_code == 303
        shown = await http.get(path)
        assert TEMPORARY.search(shown.text) and "New password due" in shown.text

        for _ in range(app.state.settings.login_max_failures):
            await client.post("/auth/login", json={"username": "fran", "password": "wrong"})
        locked = await http.get(path)
        assert "Delayed until" in locked.text
        unlocked = await submit(http, path, path + "/unlock")
        assert unlocked.status_code == 303
        assert "Sign-in delay lifted" in (await http.get(path)).text

        out = await submit(http, path, path + "/deactivate")
        assert out.status_code == 303
        assert "Reactivate" in (await http.get(path)).text
        back = await submit(http, path, path + "/reactivate")
        assert back.status_code == 303

        own = await _id("alice")
        mine = await http.get(f"/admin/accounts/{own}")
        assert "Deactivate" not in mine.text and "your own account" in mine.text
        refused = await http.post(
            f"/admin/accounts/{own}/deactivate", data={"_csrf_token": csrf_from(mine.text)}
        )
        assert refused.status_code == 409 and "your own account" in refused.text
        listed = await http.get("/admin/accounts")
        assert "fran" in listed.text and "alice" in listed.text
    updates = await AuditEvent.select().where(
        (AuditEvent.record_id == fran) & (AuditEvent.action == "update")
    )
    assert len(updates) == 5


async def test_agencies_list_and_add(app, clean_database):
    await make_account("alice", Role.admin)
    async with browser(app) as http:
        await sign_in_page(http, "alice")
        added = await submit(http, "/admin/agencies", name="  Rotherham   Early Help ")
        assert added.status_code == 303
        page = await http.get("/admin/agencies")
        assert "Agency added: Rotherham Early Help" in page.text
        again = await submit(http, "/admin/agencies", name="rotherham early help")
        assert again.status_code == 422 and "exists already" in again.text
        blank = await submit(http, "/admin/agencies", name=" ")
        assert blank.status_code == 422


async def test_programme_settings_are_saved_through_the_service_and_audited(app, clean_database):
    await make_account("alice", Role.admin)
    async with browser(app) as http:
        await sign_in_page(http, "alice")
        page = await http.get("/admin/settings")
        assert "INSPIRE_COMMISSIONED_AREAS" in page.text and "Rotherham" in page.text
        fields = {
            "weeks": "26",
            "core_sessions": "24",
            "completion_min_sessions": "30",
            "at_risk_absences": "x",
            "exit_review_required": "yes",
        }
        bad = await submit(http, "/admin/settings", **fields)
        assert bad.status_code == 422 and "a whole number from 1 to 1000" in bad.text
        fields["at_risk_absences"] = "2"
        over = await submit(http, "/admin/settings", **fields)
        assert over.status_code == 422 and "Cannot exceed the number of core sessions" in over.text
        fields["completion_min_sessions"] = "18"
        saved = await submit(http, "/admin/settings", **fields)
        assert saved.status_code == 303
        assert 'value="2"' in (await http.get("/admin/settings")).text
    rows = await AuditEvent.select().where(AuditEvent.record_type == "programme")
    assert [r["action"] for r in rows] == ["update"]


async def test_the_audit_trail_is_searched_paged_and_downloaded(app, client, clean_database):
    await make_account("alice", Role.admin)
    await make_account("fran", Role.facilitator)
    for _ in range(55):
        await log_in(client, "fran")
    async with browser(app) as http:
        await sign_in_page(http, "alice")
        page = await http.get("/admin/audit?username=fran&action=login")
        assert page.status_code == 200
        assert "55 found, 1 to 50 shown" in page.text
        assert "offset=50" in page.text
        second = await http.get("/admin/audit?username=fran&action=login&offset=50")
        assert "51 to 55 shown" in second.text
        bad = await http.get("/admin/audit?from=yesterday&record_type=nonsense")
        assert bad.status_code == 422
        assert "Enter a date as YYYY-MM-DD" in bad.text and "Choose a kind of record" in bad.text
        download = await http.get("/admin/audit/download?username=fran&action=login")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        assert "attachment" in download.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert len(rows) == 55 and {r["username"] for r in rows} == {"fran"}
    exports = await AuditEvent.select().where(AuditEvent.action == "export")
    assert len(exports) == 1 and exports[0]["record_type"] == "audit_trail"
    assert "fran" not in exports[0]["detail"]  # the filters used, never their values


async def test_no_victim_detail_on_any_admin_page(app, client, clean_database, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    made = await client.post("/referrals", json=good_referral(victims=[VICTIM]), headers=referrer)
    assert made.status_code == 201
    await make_account("alice", Role.admin)
    async with browser(app) as http:
        await sign_in_page(http, "alice")
        for path in ("/admin/accounts", "/admin/agencies", "/admin/settings", "/admin/audit"):
            page = await http.get(path)
            assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
            assert not any(trace in page.text for trace in VICTIM_TRACES), path
        download = await http.get("/admin/audit/download")
        assert not any(trace in download.text for trace in VICTIM_TRACES)
