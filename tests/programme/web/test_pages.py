"""The web pages' base over HTTP: sessions, CSRF, roles, headers, first run, own password."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from litestar import Request, get

from programme.app import create_app
from programme.platform.accounts import access
from programme.platform.settings import ConfigurationError, get_settings
from programme.platform.tables import AuditEvent, Role, SetupToken
from programme.platform.web import browser as web
from programme.platform.web import services
from tests.builders import PASSWORD
from tests.programme.web.helpers import browser, csrf_from, make_account, sign_in, submit

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "a different long passphrase"


def cookie_header(response, name: str) -> str:
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")]
    assert found, (name, response.headers.get_list("set-cookie"))
    return found[-1]


async def test_a_page_without_a_session_sends_the_browser_to_sign_in(app, clean_database):
    async with browser(app) as http:
        for path in ("/", "/account/password"):
            response = await http.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/sign-in"


async def test_signing_in_opens_a_session_in_an_httponly_samesite_cookie(app, clean_database):
    await make_account("fran")
    async with browser(app) as http:
        response = await sign_in(http, "fran")
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        cookie = cookie_header(response, web.SESSION_COOKIE).lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert "secure" not in cookie
        home = await http.get("/")
        assert home.status_code == 200
        assert "Signed in as <strong>fran</strong>" in home.text
        # The cookie holds only a random id: nothing about the person.
        value = http.cookies[web.SESSION_COOKIE]
        assert "fran" not in value and len(value) == 64


async def test_cookies_are_secure_when_the_setting_says_so(app, clean_database):
    await make_account("fran")
    secure = create_app(replace(app.state.settings, secure_cookies=True))
    async with browser(secure, https=True) as http:
        shown = await http.get("/sign-in")
        assert "secure" in cookie_header(shown, web.CSRF_COOKIE).lower()
        response = await http.post(
            "/sign-in",
            data={"_csrf_token": csrf_from(shown.text), "username": "fran", "password": PASSWORD},
        )
        assert response.status_code == 303
        cookie = cookie_header(response, web.SESSION_COOKIE).lower()
        assert "secure" in cookie and "httponly" in cookie


async def test_signing_in_gives_a_new_session_id(app, clean_database):
    """An id planted beforehand (session fixation) is never the signed-in one."""
    await make_account("fran")
    async with browser(app) as http:
        http.cookies.set(web.SESSION_COOKIE, "a" * 64)
        response = await sign_in(http, "fran")
        given = cookie_header(response, web.SESSION_COOKIE).split(";")[0].split("=")[1]
        assert len(given) == 64 and given != "a" * 64


async def test_a_wrong_password_says_so_in_the_error_summary(app, clean_database):
    await make_account("fran")
    async with browser(app) as http:
        response = await sign_in(http, "fran", "not the password at all")
        assert response.status_code == 401
        assert "govuk-error-summary" in response.text
        assert "The username or password is not right." in response.text
        assert 'href="#username"' in response.text
        assert (await http.get("/")).status_code == 303


async def test_an_empty_sign_in_lists_both_missing_fields(app, clean_database):
    async with browser(app) as http:
        response = await sign_in(http, "", "")
        assert response.status_code == 422
        assert "Enter your username." in response.text
        assert "Enter your password." in response.text


async def test_sign_in_is_throttled_like_the_api(app, clean_database):
    await make_account("fran")
    settings = app.state.settings
    async with browser(app) as http:
        for _ in range(settings.login_max_failures):
            assert (await sign_in(http, "fran", "wrong password here")).status_code == 401
        response = await sign_in(http, "fran", PASSWORD)
        assert response.status_code == 429
        assert "Retry-After" in response.headers
        assert "<html" in response.text


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(app, clean_database):
    await make_account("fran")
    async with browser(app) as http:
        await http.get("/sign-in")  # the CSRF cookie is there; only the form's token is missing
        response = await http.post("/sign-in", data={"username": "fran", "password": PASSWORD})
        assert response.status_code == 403
        assert "This form could not be sent" in response.text
        assert web.SESSION_COOKIE not in http.cookies or (await http.get("/")).status_code == 303
        await sign_in(http, "fran")
        token_less = await http.post(
            "/account/password",
            data={"current": PASSWORD, "new": NEW_PASSWORD, "new_again": NEW_PASSWORD},
        )
        assert token_less.status_code == 403
        forged = await http.post(
            "/account/password",
            data={
                "_csrf_token": "0" * 128,
                "current": PASSWORD,
                "new": NEW_PASSWORD,
                "new_again": NEW_PASSWORD,
            },
        )
        assert forged.status_code == 403
    async with browser(app) as http:
        assert (await sign_in(http, "fran", PASSWORD)).status_code == 303  # unchanged


async def test_sign_out_ends_the_session(app, clean_database):
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        old_id = http.cookies[web.SESSION_COOKIE]
        response = await submit(http, "/", "/sign-out")
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in?signed_out=1"
        assert "You have signed out." in (await http.get("/sign-in?signed_out=1")).text
        assert (await http.get("/")).status_code == 303
    # The old id, replayed, opens nothing: the session is gone from the server.
    async with browser(app) as http:
        http.cookies.set(web.SESSION_COOKIE, old_id)
        assert (await http.get("/")).status_code == 303


async def test_a_session_ends_after_the_idle_time(app, clean_database):
    await make_account("fran")
    quick = create_app(replace(app.state.settings, session_idle_seconds=2))
    async with browser(quick) as http:
        signed_in = await sign_in(http, "fran")
        # The cookie lasts as long as the browser: the server ends an idle session.
        assert "max-age" not in cookie_header(signed_in, web.SESSION_COOKIE).lower()
        assert (await http.get("/")).status_code == 200
        await asyncio.sleep(1.2)
        assert (await http.get("/")).status_code == 200  # each request renews it
        await asyncio.sleep(1.2)
        assert (await http.get("/")).status_code == 200
        await asyncio.sleep(2.5)
        response = await http.get("/")
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in?ended=1"
        notice = await http.get(response.headers["location"])
        assert "signed out because you had not done anything" in notice.text


async def test_security_headers_on_pages_api_and_static_files(app, clean_database):
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        for path in ("/", "/sign-in", "/health", "/static/app.css", "/nowhere"):
            response = await http.get(path)
            headers = response.headers
            csp = headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "no-referrer", path
        assert (await http.get("/")).headers["cache-control"] == "no-store"
        assert (await http.get("/static/app.css")).headers["cache-control"] == "max-age=3600"
        schema = await http.get("/schema/swagger")
        assert schema.headers["content-security-policy"] == "frame-ancestors 'none'"


async def test_pages_have_no_inline_script(app, clean_database):
    await make_account("fran")
    async with browser(app) as http:
        pages = [(await http.get("/sign-in")).text]
        await sign_in(http, "fran")
        pages += [(await http.get(p)).text for p in ("/", "/account/password")]
    for html in pages:
        for tag in html.split("<script")[1:]:
            assert tag.split(">", 1)[0].strip().startswith(("src=", 'type="module" src=')), tag
            assert tag.split(">", 1)[1].startswith("</script>")


async def test_an_api_route_still_answers_json_401_without_a_token(client):
    response = await client.get("/auth/me")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_signed_in"


async def test_a_bearer_token_does_not_open_a_page(app, client, sign_in):
    headers = await sign_in(Role.admin, "bearer-only")
    response = await client.get("/", headers=headers)
    assert response.status_code == 303


# --- roles on pages: the API's guards, the navigation from them ---


@get(
    "/test-facilitators-only", guards=[access.requires(Role.facilitator)], opt={web.NAV: "Caseload"}
)
async def facilitators_only(request: Request) -> object:
    return web.page(request, "home.html", title="Caseload")


@get("/test-no-roles", sync_to_thread=False)
def no_roles() -> str:
    return "never served"


def test_a_page_that_declares_no_roles_stops_the_app_starting():
    with pytest.raises(ConfigurationError, match="GET /test-no-roles"):
        create_app(get_settings(), extra_pages=[no_roles])


async def test_navigation_lists_only_what_the_role_may_open(app, clean_database):
    await make_account("fran", Role.facilitator)
    await make_account("rita", Role.referrer)
    pages = create_app(app.state.settings, extra_pages=[facilitators_only])
    async with browser(pages) as http:
        await sign_in(http, "fran")
        home = await http.get("/")
        assert 'href="/test-facilitators-only"' in home.text
        assert (await http.get("/test-facilitators-only")).status_code == 200
    async with browser(pages) as http:
        await sign_in(http, "rita")
        home = await http.get("/")
        assert "/test-facilitators-only" not in home.text
        refused = await http.get("/test-facilitators-only")
        assert refused.status_code == 403
        assert "You cannot see this page" in refused.text
        assert refused.headers["content-type"].startswith("text/html")


async def test_every_page_walked_as_nobody_and_as_every_role(app, clean_database):
    """The route-walking access test, for pages: the same rule as the API's."""
    for role in Role:
        await make_account(f"{role.value}-walker", role)
    walked = 0
    for method, path, roles, public in access.page_routes_and_roles(app):
        concrete = path.replace("{token:str}", "not-a-token").replace("{file_path:path}", "app.css")
        concrete = re.sub(r"\{\w+:uuid\}", "00000000-0000-4000-8000-000000000001", concrete)
        async with browser(app) as http:
            shown = await http.get("/sign-in")
            data = {"_csrf_token": csrf_from(shown.text)}
            response = await http.request(method, concrete, data=data if method == "POST" else None)
            if public:
                assert response.status_code not in (401, 403), (method, path)
            else:
                assert response.status_code == 303, (method, path)
                assert response.headers["location"] == "/sign-in"
        for role in Role:
            if public:
                continue
            async with browser(app) as http:
                await sign_in(http, f"{role.value}-walker")
                home = await http.get("/")
                data = {"_csrf_token": csrf_from(home.text)}
                response = await http.request(
                    method, concrete, data=data if method == "POST" else None
                )
                if roles and role.value in roles:
                    assert response.status_code not in (401, 403), (method, path, role)
                else:
                    assert response.status_code == 403, (method, path, role)
        walked += 1
    assert walked >= 8


# --- first run ---


async def test_the_first_run_link_makes_the_admin_once(app, clean_database):
    now = datetime.now(UTC)
    token = await services.open_first_run(now)
    assert token is not None
    stored = await SetupToken.select(SetupToken.token_digest).first()
    assert stored is not None and token not in stored["token_digest"]  # only a digest is kept
    async with browser(app) as http:
        form = await http.get(f"/set-up/{token}")
        assert form.status_code == 200
        response = await http.post(
            f"/set-up/{token}",
            data={
                "_csrf_token": csrf_from(form.text),
                "username": "alice",
                "password": PASSWORD,
                "password_again": PASSWORD,
            },
        )
        assert response.status_code == 303 and response.headers["location"] == "/"
        home = await http.get("/")
        assert "Signed in as <strong>alice</strong> (admin)" in home.text
    async with browser(app) as http:
        again = await http.get(f"/set-up/{token}")
        assert again.status_code == 404
        assert "expired or has been used" in again.text
        assert (await sign_in(http, "alice")).status_code == 303
    assert await services.open_first_run(now) is None  # an admin exists: no new link
    audit = await AuditEvent.select().where(AuditEvent.record_type == "account").first()
    assert audit is not None and audit["username"] == "first-run set-up"


async def test_the_first_run_form_lists_every_problem(app, clean_database):
    token = await services.open_first_run(datetime.now(UTC))
    async with browser(app) as http:
        form = await http.get(f"/set-up/{token}")
        response = await http.post(
            f"/set-up/{token}",
            data={
                "_csrf_token": csrf_from(form.text),
                "username": "Not Valid!",
                "password": "short",
                "password_again": "short",
            },
        )
        assert response.status_code == 422
        assert 'href="#username"' in response.text and 'href="#password"' in response.text
        assert "Use at least 12 characters." in response.text
        mismatch = await http.post(
            f"/set-up/{token}",
            data={
                "_csrf_token": csrf_from(form.text),
                "username": "alice",
                "password": PASSWORD,
                "password_again": PASSWORD + "x",
            },
        )
        assert "The two passwords differ." in mismatch.text
    assert (await http_get_status(app, f"/set-up/{token}")) == 200  # still usable


async def http_get_status(app, path: str) -> int:
    async with browser(app) as http:
        return (await http.get(path)).status_code


async def test_a_first_run_link_dies_when_it_expires_or_a_newer_one_is_printed(app, clean_database):
    old = await services.open_first_run(datetime.now(UTC) - timedelta(hours=25))
    assert await http_get_status(app, f"/set-up/{old}") == 404  # expired
    first = await services.open_first_run(datetime.now(UTC))
    second = await services.open_first_run(datetime.now(UTC))
    assert await http_get_status(app, f"/set-up/{first}") == 404
    assert await http_get_status(app, f"/set-up/{second}") == 200


async def test_a_first_run_link_does_nothing_once_any_account_exists(app, clean_database):
    token = await services.open_first_run(datetime.now(UTC))
    await make_account("someone", Role.admin)
    assert await http_get_status(app, f"/set-up/{token}") == 404


async def test_inspire_serve_prints_the_link_on_an_empty_database_only(
    migrated_database, clean_database, capsys
):
    from programme import server

    _, token = await server._migrate()
    assert token is not None
    server._announce_first_run("127.0.0.1", 8000, token)
    assert f"http://127.0.0.1:8000/set-up/{token}" in capsys.readouterr().err
    await make_account("someone", Role.admin)
    assert (await server._migrate())[1] is None


# --- one's own password ---


async def test_changing_ones_password_ends_the_other_sessions_only(app, clean_database):
    await make_account("fran")
    async with browser(app) as here, browser(app) as elsewhere:
        await sign_in(here, "fran")
        await sign_in(elsewhere, "fran")
        response = await submit(
            here, "/account/password", current=PASSWORD, new=NEW_PASSWORD, new_again=NEW_PASSWORD
        )
        assert response.status_code == 303
        done = await here.get(response.headers["location"])
        assert done.status_code == 200 and "Password changed" in done.text
        assert (await here.get("/")).status_code == 200
        ended = await elsewhere.get("/")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/sign-in")
    async with browser(app) as http:
        assert (await sign_in(http, "fran", PASSWORD)).status_code == 401
        assert (await sign_in(http, "fran", NEW_PASSWORD)).status_code == 303
    changes = await AuditEvent.select().where(
        (AuditEvent.action == "update") & (AuditEvent.record_type == "account")
    )
    assert [json.loads(row["detail"]) for row in changes] == [{"fields": ["password"]}]


async def test_a_new_password_follows_the_clis_length_rule(app, clean_database):
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        short = await submit(
            http, "/account/password", current=PASSWORD, new="eleven char", new_again="eleven char"
        )
        assert short.status_code == 422
        assert "Use at least 12 characters." in short.text
        wrong = await submit(
            http,
            "/account/password",
            current="not my password",
            new=NEW_PASSWORD,
            new_again=NEW_PASSWORD,
        )
        assert "Your current password is not right." in wrong.text
        differ = await submit(
            http, "/account/password", current=PASSWORD, new=NEW_PASSWORD, new_again="something"
        )
        assert "The two passwords differ." in differ.text
    async with browser(app) as http:
        assert (await sign_in(http, "fran", PASSWORD)).status_code == 303  # unchanged


async def test_an_unknown_address_asked_for_by_a_browser_is_a_page(client):
    response = await client.get("/no-such-page", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
