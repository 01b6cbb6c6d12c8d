"""The facilitators' pages over HTTP, as a browser sends them: caseload, a referral,
groups, sessions, the register, at risk, waiting list.

Referrals are made through the API (bearer tokens) as a referrer would; everything
else through the pages, with the CSRF token from each form.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from programme.delivery import rules
from programme.platform.clock import today
from programme.platform.tables import Role
from tests.builders import VICTIM, VICTIM_TRACES, good_referral
from tests.programme.web.helpers import browser, csrf_from, make_account, sign_in, submit
from tests.programme.web.helpers import sign_in as sign_in_page

pytestmark = pytest.mark.anyio


def _date(prefix: str, day: date) -> dict[str, str]:
    return {
        f"{prefix}-day": str(day.day),
        f"{prefix}-month": str(day.month),
        f"{prefix}-year": str(day.year),
    }


async def _referral(client, headers, received_on: date, **overrides) -> str:
    body = good_referral(
        received_on=received_on.isoformat(),
        consent_obtained_on=received_on.isoformat(),
        **overrides,
    )
    response = await client.post("/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["victims_recorded"] == len(overrides.get("victims", []))
    return response.json()["id"]


@pytest.fixture
async def referrer(sign_in):
    return await sign_in(Role.referrer, "pc-smith")


# --- the working-days rule behind the caseload's highlight ---


def test_working_days_skip_weekends():
    friday = date(2026, 11, 20)
    assert rules.working_days_between(friday, friday) == 0
    assert rules.working_days_between(friday, friday + timedelta(days=2)) == 0  # Sunday
    assert rules.working_days_between(friday, friday + timedelta(days=3)) == 1  # Monday
    assert rules.working_days_between(friday, friday + timedelta(days=7)) == 5
    assert rules.working_days_between(friday, friday + timedelta(days=10)) == 6
    assert rules.working_days_between(friday, friday - timedelta(days=1)) == 0


def test_overdue_only_past_the_setting():
    monday = date(2026, 11, 16)
    assert not rules.overdue_for_contact(monday, monday + timedelta(days=7), 5)  # 5 days
    assert rules.overdue_for_contact(monday, monday + timedelta(days=8), 5)  # 6 days


# --- caseload ---


async def test_caseload_lists_new_referrals_oldest_first_overdue_highlighted(app, client, referrer):
    now = today()
    recent = await _referral(client, referrer, now, first_name="Recent", phone="0114 496 0001")
    old = await _referral(
        client, referrer, now - timedelta(days=20), first_name="Oldest", phone="0114 496 0002",
        date_of_birth="1985-01-02", last_name="Earlier",
    )  # fmt: skip
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        page = await http.get("/caseload")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        waiting = page.text.split('id="waiting"')[1].split('id="contacted"')[0]
        assert waiting.index(old) < waiting.index(recent)  # oldest first
        rows = waiting.split("<tr")
        old_row = next(r for r in rows if old in r)
        recent_row = next(r for r in rows if recent in r)
        assert "app-overdue" in old_row and "overdue</strong>" in old_row
        assert "app-overdue" not in recent_row
        assert "Oldest Earlier" in old_row


async def test_search_by_name_is_a_post_and_finds_the_referral(app, client, referrer):
    referral_id = await _referral(client, referrer, today(), first_name="Findable")
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        found = await submit(http, "/caseload", "/caseload/search", name="findable", reference="")
        assert found.status_code == 200
        assert f"/caseload/{referral_id}" in found.text
        assert "1 found" in found.text
        nothing = await submit(http, "/caseload", "/caseload/search", name="", reference="")
        assert nothing.status_code == 422
        assert "Enter a reference or a name." in nothing.text
        assert 'href="#reference"' in nothing.text


# --- a referral ---


async def test_a_referral_offers_only_the_steps_allowed_now_and_records_them(app, client, referrer):
    received = today() - timedelta(days=3)
    referral_id = await _referral(client, referrer, received)
    await make_account("fran")
    page_path = f"/caseload/{referral_id}"
    async with browser(app) as http:
        await sign_in(http, "fran")
        shown = await http.get(page_path)
        assert shown.status_code == 200
        assert "Jordan Testperson" in shown.text
        offered = set(re.findall(r'name="type" type="radio" value="(\w+)"', shown.text))
        assert offered == {"contacted", "disengaged", "withdrawn", "closed"}

        # A step not allowed now, sent anyway: the service's 409, as a message.
        refused = await http.post(
            page_path + "/steps",
            data={"_csrf_token": csrf_from(shown.text), "type": "engaged", **_date("on", today())},
        )
        assert refused.status_code == 409
        assert "cannot move to engaged" in refused.text
        assert "govuk-error-summary" in refused.text

        # Before the referral: the service's 422, linked to the date input.
        early = await submit(
            http, page_path, page_path + "/steps", type="contacted",
            **_date("on", received - timedelta(days=5)),
        )  # fmt: skip
        assert early.status_code == 422
        assert 'href="#on-day"' in early.text

        bad = await submit(
            http, page_path, page_path + "/steps", type="", **{"on-day": "31", "on-month": "2"}
        )
        assert bad.status_code == 422
        assert "Choose what happened." in bad.text
        assert "must include a day, month and year" in bad.text

        done = await submit(
            http, page_path, page_path + "/steps", type="contacted", **_date("on", today())
        )
        assert done.status_code == 303
        assert done.headers["location"] == page_path
        after = await http.get(page_path)
        assert "Recorded: contacted" in after.text
        offered = set(re.findall(r'name="type" type="radio" value="(\w+)"', after.text))
        assert offered == {"engaged", "disengaged", "withdrawn", "closed"}
        assert "<strong>contacted</strong>" in after.text


# --- groups, sessions and the register ---


async def _engaged(client, referrer, http, n: int, received: date) -> str:
    referral_id = await _referral(
        client, referrer, received, first_name=f"Person{'abcdefgh'[n]}",
        phone=f"0114 496 010{n}", date_of_birth=f"198{n}-03-04",
    )  # fmt: skip
    for step in ("contacted", "engaged"):
        path = f"/caseload/{referral_id}"
        moved = await submit(http, path, path + "/steps", type=step, **_date("on", received))
        assert moved.status_code == 303, moved.text
    return referral_id


async def test_a_group_its_members_sessions_and_register(app, client, referrer):
    received = today() - timedelta(days=10)
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        first = await _engaged(client, referrer, http, 1, received)
        second = await _engaged(client, referrer, http, 2, received)

        missing = await submit(http, "/delivery/groups", name="", capacity="x", facilitators="")
        assert missing.status_code == 422
        for message in ("Enter the group&#39;s name.", "Enter the start date.", "from 1 to 100"):
            assert message in missing.text
        nobody = await submit(
            http, "/delivery/groups", name="Tuesday", capacity="1", facilitators="nobody",
            **_date("starts_on", received),
        )  # fmt: skip
        assert nobody.status_code == 422
        assert "No facilitator account by this name. (nobody)" in nobody.text
        made = await submit(
            http, "/delivery/groups", name="Tuesday", capacity="1", facilitators="fran",
            **_date("starts_on", received),
        )  # fmt: skip
        assert made.status_code == 303
        group_path = made.headers["location"]

        group = await http.get(group_path)
        assert first in group.text and second in group.text  # both on the waiting list
        added = await submit(http, group_path, group_path + "/members", referral_id=first)
        assert added.status_code == 303
        full = await http.get(group_path)
        assert "This group is full" in full.text
        assert 'name="referral_id"' not in full.text

        # Full, sent anyway: the service's 409 as a message beside the field.
        refused = await http.post(
            group_path + "/members",
            data={"_csrf_token": csrf_from(full.text), "referral_id": second},
        )
        assert refused.status_code == 409
        assert "The group is full." in refused.text

        held = today() - timedelta(days=2)
        scheduled = await submit(
            http, group_path, group_path + "/sessions", number="1", kind="group",
            **_date("held_on", held),
        )  # fmt: skip
        assert scheduled.status_code == 303
        again = await submit(
            http, group_path, group_path + "/sessions", number="1", kind="group",
            **_date("held_on", held + timedelta(days=1)),
        )  # fmt: skip
        assert again.status_code == 409
        assert "already has group session 1" in again.text

        group = await http.get(group_path)
        register_path = re.search(r'href="(/delivery/groups/[^"]+/register)"', group.text).group(1)
        register = await http.get(register_path)
        assert register.status_code == 200
        field = f"mark-{first}"
        assert f'name="{field}" type="radio" value="attended"' in register.text

        unmarked = await http.post(register_path, data={"_csrf_token": csrf_from(register.text)})
        assert unmarked.status_code == 422
        assert f'href="#{field}"' in unmarked.text

        saved = await submit(http, register_path, **{field: "attended"})
        assert saved.status_code == 303
        shown = await http.get(register_path)
        assert "Register saved" in shown.text
        assert "started" in shown.text  # the register started the referral
        referral = await http.get(f"/caseload/{first}")
        assert f"<strong>started</strong> {held.day} " in referral.text

        corrected = await submit(http, register_path, **{field: "absent"})
        assert corrected.status_code == 303
        shown = await http.get(register_path)
        assert "Register corrected" in shown.text
        assert "attended, now absent" in shown.text
        assert "Marked absent by fran" in shown.text

        remove_path = f"{group_path}/members/{first}/remove"
        no_reason = await submit(http, remove_path, reason="")
        assert no_reason.status_code == 422
        ended = await submit(http, remove_path, reason="Moved away")
        assert ended.status_code == 303
        assert (
            first
            not in (await http.get(group_path))
            .text.split('id="sessions"')[0]
            .split("Add someone")[0]
        )


async def test_at_risk_and_waiting_list_pages(app, client, referrer):
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        waiting_one = await _engaged(client, referrer, http, 3, today() - timedelta(days=4))
        waiting = await http.get("/delivery/waiting-list")
        assert waiting.status_code == 200
        assert waiting_one in waiting.text
        at_risk = await http.get("/delivery/at-risk")
        assert at_risk.status_code == 200
        assert "Nobody is at risk." in at_risk.text


# --- who may, and how ---


FACILITATOR_GETS = ["/caseload", "/delivery/groups", "/delivery/at-risk", "/delivery/waiting-list"]


async def test_other_roles_are_refused_and_the_navigation_shows_the_pages(app, clean_database):
    await make_account("fran")
    await make_account("pc", Role.referrer)
    await make_account("watcher", Role.monitor)
    async with browser(app) as http:
        await sign_in(http, "fran")
        home = await http.get("/")
        for path in FACILITATOR_GETS:
            assert f'href="{path}"' in home.text
    for username in ("pc", "watcher"):
        async with browser(app) as http:
            await sign_in(http, username)
            home = await http.get("/")
            for path in FACILITATOR_GETS:
                assert f'href="{path}"' not in home.text
                refused = await http.get(path)
                assert refused.status_code == 403, (username, path)
                assert "You cannot see this page" in refused.text
            token = csrf_from(home.text)
            searched = await http.post(
                "/caseload/search", data={"_csrf_token": token, "name": "Jordan"}
            )
            assert searched.status_code == 403


async def test_every_facilitator_form_needs_its_csrf_token(app, client, referrer):
    referral_id = await _referral(client, referrer, today())
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        made = await submit(
            http, "/delivery/groups", name="Wednesday", capacity="8", facilitators="fran",
            **_date("starts_on", today()),
        )  # fmt: skip
        group_path = made.headers["location"]
        forms = [
            ("/caseload/search", {"name": "Jordan"}),
            (f"/caseload/{referral_id}/steps", {"type": "contacted", **_date("on", today())}),
            ("/delivery/groups", {"name": "Thursday", "capacity": "8", "facilitators": "fran"}),
            (group_path + "/members", {"referral_id": referral_id}),
            (group_path + f"/members/{referral_id}/remove", {"reason": "x"}),
            (group_path + "/sessions", {"number": "1", "kind": "group"}),
            (group_path + f"/sessions/{referral_id}/register", {}),
        ]
        for path, data in forms:
            response = await http.post(path, data=data)
            assert response.status_code == 403, path
        shown = await http.get(f"/caseload/{referral_id}")
        assert "<strong>contacted</strong>" not in shown.text  # nothing was recorded
        groups = await http.get("/delivery/groups")
        assert "Thursday" not in groups.text


async def test_no_name_reaches_an_address(app, client, referrer):
    """Every link and form on the facilitators' pages addresses records by id only."""
    referral_id = await _referral(client, referrer, today(), first_name="Addressless")
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        pages = [
            await http.get("/caseload"),
            await http.get(f"/caseload/{referral_id}"),
            await submit(http, "/caseload", "/caseload/search", name="Addressless"),
        ]
        for page in pages:
            assert "Addressless" in page.text
            for address in re.findall(r'(?:href|action)="([^"]*)"', page.text):
                assert "addressless" not in address.lower()
                assert "testperson" not in address.lower()
                assert "1990" not in address
            assert page.headers["cache-control"] == "no-store"


async def test_no_victim_detail_on_any_facilitator_page(app, client, referrer):
    """Victims' details are for victim workers only: none on the facilitators' pages."""
    received = today() - timedelta(days=3)
    victim = VICTIM | {"consent_obtained_on": received.isoformat()}
    referral_id = await _referral(client, referrer, received, victims=[victim])
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        await _engaged_by_page(http, referral_id, received)
        made = await submit(
            http, "/delivery/groups", name="Friday", capacity="8", facilitators="fran",
            **_date("starts_on", received),
        )  # fmt: skip
        group_path = made.headers["location"]
        shown = [
            await http.get("/caseload"),
            await http.get(f"/caseload/{referral_id}"),
            await submit(http, "/caseload", "/caseload/search", name="Testperson"),
            await http.get("/delivery/waiting-list"),
            await http.get(group_path),
        ]
        await submit(http, group_path, group_path + "/members", referral_id=referral_id)
        shown += [await http.get(group_path), await http.get("/delivery/groups")]
        for page in shown:
            assert page.status_code == 200
            for trace in VICTIM_TRACES:
                assert trace not in page.text, (str(page.url), trace)
        assert referral_id in shown[-2].text  # the member is there, the victim is not


async def _engaged_by_page(http, referral_id: str, on: date) -> None:
    for step in ("contacted", "engaged"):
        path = f"/caseload/{referral_id}"
        moved = await submit(http, path, path + "/steps", type=step, **_date("on", on))
        assert moved.status_code == 303, moved.text


async def test_a_voided_step_is_struck_through_and_no_longer_counts(app, client, referrer, sign_in):
    received = today() - timedelta(days=3)
    referral_id = await _referral(client, referrer, received)
    staff = await sign_in(Role.facilitator, "api-fran")
    steps = await client.post(
        f"/referrals/{referral_id}/events",
        json={"type": "contacted", "on": received.isoformat()},
        headers=staff,
    )
    assert steps.status_code == 201, steps.text
    contacted = next(s for s in steps.json() if s["type"] == "contacted")
    voided = await client.post(
        f"/referrals/{referral_id}/events/{contacted['id']}/void",
        json={"reason": "Rang the wrong number"},
        headers=staff,
    )
    assert voided.status_code == 200, voided.text
    await make_account("fran")
    async with browser(app) as http:
        await sign_in_page(http, "fran")
        shown = await http.get(f"/caseload/{referral_id}")
        assert "<del><strong>contacted</strong>" in shown.text
        assert "voided: Rang the wrong number" in shown.text
        offered = set(re.findall(r'name="type" type="radio" value="(\w+)"', shown.text))
        assert "contacted" in offered  # the status follows the steps that remain
