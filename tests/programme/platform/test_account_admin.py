"""Admins' work on accounts over the API: deactivate, reactivate, change role, reset a
password, unlock; signing out revokes the token; the rules that keep an admin in charge."""

from __future__ import annotations

import pytest

from programme.platform.accounts import rules
from programme.platform.tables import Account, AuditEvent, Role
from tests.builders import PASSWORD, log_in
from tests.programme.web.helpers import browser, make_account, submit
from tests.programme.web.helpers import sign_in as sign_in_page

pytestmark = pytest.mark.anyio


# --- the rule, on its own ---


def test_nobody_deactivates_themselves_or_the_last_admin():
    problem = rules.account_change_problem
    kw = {"target_is_active_admin": False, "other_active_admins": 1}
    assert problem("deactivate", acting_on_self=True, **kw)
    assert problem("change_role", acting_on_self=True, **kw)
    assert problem("deactivate", acting_on_self=False, **kw) is None
    last = {"acting_on_self": False, "target_is_active_admin": True, "other_active_admins": 0}
    assert problem("deactivate", **last)
    assert problem("change_role", **last)
    assert problem("reset_password", **last) is None
    assert problem("unlock", acting_on_self=True, **kw) is None


# --- helpers ---


async def _account_id(username: str):
    row = await Account.select(Account.id).where(Account.username == username).first()
    return row["id"]


async def _me(client, headers):
    return await client.get("/auth/me", headers=headers)


# --- only admins ---


async def test_only_admins_manage_accounts(client, sign_in):
    await sign_in(Role.facilitator, "fran")
    target = await _account_id("fran")
    for role in (Role.referrer, Role.facilitator, Role.victim_worker, Role.monitor):
        headers = await sign_in(role, f"{role.value}-someone")
        for method, path, body in [
            ("POST", f"/accounts/{target}/deactivate", None),
            ("POST", f"/accounts/{target}/reactivate", None),
            ("POST", f"/accounts/{target}/reset-password", None),
            ("POST", f"/accounts/{target}/unlock", None),
            ("PATCH", f"/accounts/{target}", {"role": "admin"}),
            ("GET", f"/accounts/{target}", None),
            ("GET", f"/accounts/{target}/lockout", None),
        ]:
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (role, method, path)
    assert (await Account.select().where(Account.username == "fran").first())["active"]


# --- deactivate and reactivate ---


async def test_a_deactivated_persons_token_and_browser_session_stop_at_once(app, client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    await make_account("leaver", Role.facilitator)
    token = await log_in(client, "leaver")
    async with browser(app) as http:
        await sign_in_page(http, "leaver")
        assert (await http.get("/caseload")).status_code == 200
        target = await _account_id("leaver")
        response = await client.post(f"/accounts/{target}/deactivate", headers=admin)
        assert response.status_code == 200, response.text
        assert response.json()["active"] is False
        assert (await _me(client, token)).status_code == 401
        page = await http.get("/caseload")
        assert page.status_code == 303 and page.headers["location"].startswith("/sign-in")
    login = await client.post("/auth/login", json={"username": "leaver", "password": PASSWORD})
    assert login.status_code == 401
    rows = await AuditEvent.select().where(
        (AuditEvent.record_id == str(target)) & (AuditEvent.action == "update")
    )
    assert [r["detail"] for r in rows] == ['{"active": false}']


async def test_reactivating_lets_them_sign_in_but_never_revives_old_tokens(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    await make_account("returner", Role.facilitator)
    old = await log_in(client, "returner")
    target = await _account_id("returner")
    await client.post(f"/accounts/{target}/deactivate", headers=admin)
    response = await client.post(f"/accounts/{target}/reactivate", headers=admin)
    assert response.status_code == 200 and response.json()["active"] is True
    assert (await _me(client, old)).status_code == 401
    new = await log_in(client, "returner")
    assert (await _me(client, new)).status_code == 200


async def test_an_admin_cannot_deactivate_themselves_nor_the_last_admin(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    me = await _account_id("alice")
    response = await client.post(f"/accounts/{me}/deactivate", headers=admin)
    assert response.status_code == 409
    response = await client.patch(f"/accounts/{me}", json={"role": "monitor"}, headers=admin)
    assert response.status_code == 409
    assert (await _me(client, admin)).status_code == 200


async def test_the_last_active_admin_is_kept_whoever_asks(sign_in, client):
    from programme.platform.accounts import services
    from programme.platform.errors import Conflict
    from tests.builders import ADMIN

    await sign_in(Role.admin, "alice")
    with pytest.raises(Conflict):
        await services.set_active(await _account_id("alice"), False, ADMIN)
    await sign_in(Role.admin, "bob")
    await services.set_active(await _account_id("alice"), False, ADMIN)
    with pytest.raises(Conflict):
        await services.set_active(await _account_id("bob"), False, ADMIN)


# --- role ---


async def test_a_changed_role_ends_tokens_and_sessions_issued_under_the_old_one(
    app, client, sign_in
):
    admin = await sign_in(Role.admin, "alice")
    await make_account("mover", Role.facilitator)
    token = await log_in(client, "mover")
    target = await _account_id("mover")
    async with browser(app) as http:
        await sign_in_page(http, "mover")
        response = await client.patch(
            f"/accounts/{target}",
            json={"role": "referrer", "agency": "Sheffield Children's Services"},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        assert response.json()["role"] == "referrer"
        assert response.json()["agency"] == "Sheffield Children's Services"
        assert (await _me(client, token)).status_code == 401
        assert (await http.get("/")).status_code == 303  # to sign in again
    again = await log_in(client, "mover")
    assert (await _me(client, again)).json()["role"] == "referrer"


async def test_a_referrer_needs_an_agency(client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    await make_account("fran", Role.facilitator)
    target = await _account_id("fran")
    response = await client.patch(f"/accounts/{target}", json={"role": "referrer"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "agency"


# --- reset ---


async def test_a_reset_forces_a_new_password_at_the_next_sign_in(app, client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    await make_account("forgetful", Role.facilitator)
    before = await log_in(client, "forgetful")
    target = await _account_id("forgetful")
    response = await client.post(f"/accounts/{target}/reset-password", headers=admin)
    assert response.status_code == 200, response.text
    temporary = response.json()["temporary_password"]
    assert len(temporary) >= 12 and response.json()["account"]["reset_pending"] is True
    assert (await _me(client, before)).status_code == 401  # every earlier token ends
    old = await client.post("/auth/login", json={"username": "forgetful", "password": PASSWORD})
    assert old.status_code == 401

    # A bearer token: only /auth/me, /auth/password and /auth/logout until the new one.
    login = await client.post("/auth/login", json={"username": "forgetful", "password": temporary})
    assert login.status_code == 200
    token = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = await _me(client, token)
    assert me.status_code == 200 and me.json()["reset_pending"] is True
    refused = await client.get("/referrals", headers=token)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "new_password_required"
    same = await client.post(
        "/auth/password", json={"current": temporary, "new": temporary}, headers=token
    )
    assert same.status_code == 422
    changed = await client.post(
        "/auth/password",
        json={"current": temporary, "new": "a brand new long passphrase"},
        headers=token,
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/referrals", headers=token)).status_code == 200
    assert (await _me(client, token)).json()["reset_pending"] is False


async def test_after_a_reset_every_page_leads_to_the_password_page(app, client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    await make_account("forgetful", Role.facilitator)
    target = await _account_id("forgetful")
    temporary = (await client.post(f"/accounts/{target}/reset-password", headers=admin)).json()[
        "temporary_password"
    ]
    async with browser(app) as http:
        signed = await sign_in_page(http, "forgetful", temporary)
        assert signed.status_code == 303
        for path in ("/", "/caseload", "/delivery/groups"):
            page = await http.get(path)
            assert page.status_code == 303, path
            assert page.headers["location"] == "/account/password?reset=1"
        shown = await http.get("/account/password?reset=1")
        assert shown.status_code == 200 and "An administrator reset your password" in shown.text
        changed = await submit(
            http,
            "/account/password",
            current=temporary,
            new="a brand new long passphrase",
            new_again="a brand new long passphrase",
        )
        assert changed.status_code == 303
        assert (await http.get("/caseload")).status_code == 200


# --- unlock ---


async def test_unlock_clears_the_lockout(app, client, sign_in):
    admin = await sign_in(Role.admin, "alice")
    await make_account("typo", Role.facilitator)
    target = await _account_id("typo")
    limit = app.state.settings.login_max_failures
    for _ in range(limit):
        wrong = await client.post("/auth/login", json={"username": "typo", "password": "nope"})
        assert wrong.status_code == 401
    delayed = await client.post("/auth/login", json={"username": "typo", "password": PASSWORD})
    assert delayed.status_code == 429
    state = await client.get(f"/accounts/{target}/lockout", headers=admin)
    assert state.json()["delayed_until"] is not None and state.json()["failures"] >= limit
    unlocked = await client.post(f"/accounts/{target}/unlock", headers=admin)
    assert unlocked.status_code == 200
    assert unlocked.json()["delayed_until"] is None and unlocked.json()["failures"] == 0
    # The app's own memory of the refusal is forgotten too: the owner gets in at once.
    login = await client.post("/auth/login", json={"username": "typo", "password": PASSWORD})
    assert login.status_code == 200


# --- signing out ---


async def test_signing_out_revokes_the_token_and_only_that_one(client, sign_in):
    await make_account("fran", Role.facilitator)
    first = await log_in(client, "fran")
    second = await log_in(client, "fran")
    out = await client.post("/auth/logout", headers=first)
    assert out.status_code == 204
    assert (await _me(client, first)).status_code == 401
    assert (await client.post("/auth/logout", headers=first)).status_code == 401
    assert (await _me(client, second)).status_code == 200
    rows = await AuditEvent.select().where(AuditEvent.action == "logout")
    assert len(rows) == 1 and rows[0]["username"] == "fran"


async def test_every_role_may_sign_out(client, sign_in):
    for role in Role:
        headers = await sign_in(role, f"{role.value}-out")
        assert (await client.post("/auth/logout", headers=headers)).status_code == 204
        assert (await _me(client, headers)).status_code == 401


async def test_changing_ones_own_password_over_the_api_checks_the_current_one(client, sign_in):
    await make_account("fran", Role.facilitator)
    token = await log_in(client, "fran")
    wrong = await client.post(
        "/auth/password",
        json={"current": "not it at all", "new": "a brand new long passphrase"},
        headers=token,
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["code"] == "wrong_password"
    short = await client.post(
        "/auth/password", json={"current": PASSWORD, "new": "short"}, headers=token
    )
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "new"
    done = await client.post(
        "/auth/password",
        json={"current": PASSWORD, "new": "a brand new long passphrase"},
        headers=token,
    )
    assert done.status_code == 204
    assert (await _me(client, token)).status_code == 200  # this token carries on
    again = await client.post(
        "/auth/login", json={"username": "fran", "password": "a brand new long passphrase"}
    )
    assert again.status_code == 200
