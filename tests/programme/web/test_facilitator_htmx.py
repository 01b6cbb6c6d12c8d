"""htmx on the facilitators' forms: the part of the page that changed, in place.

With ``HX-Request`` (htmx sends it) a step, a new member or a register comes
back as the fragment htmx swaps (its own error summary or success banner, no
layout) instead of a redirect; without it the same form is a plain POST
answered by a redirect. The services called are the same either way.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from programme.platform.clock import today
from programme.platform.tables import Role
from tests.programme.web.helpers import browser, csrf_from, make_account, sign_in
from tests.programme.web.test_facilitator_pages import _date, _engaged, _referral

pytestmark = pytest.mark.anyio

HTMX = {"HX-Request": "true"}


@pytest.fixture
async def referrer(sign_in):
    return await sign_in(Role.referrer, "pc-smith")


async def _htmx_post(http, page: str, action: str, **fields) -> object:
    shown = await http.get(page)
    assert shown.status_code == 200
    # The form names where htmx sends it: the same address as without JavaScript.
    assert f'hx-post="{action}"' in shown.text
    return await http.post(
        action, data={"_csrf_token": csrf_from(shown.text), **fields}, headers=HTMX
    )


def _fragment(response, region: str) -> None:
    assert response.text.lstrip().startswith(f'<div id="{region}">'), response.text[:200]
    assert "<html" not in response.text


async def test_a_step_comes_back_in_place_and_a_refusal_too(app, client, referrer):
    referral_id = await _referral(client, referrer, today() - timedelta(days=2))
    await make_account("fran")
    path = f"/caseload/{referral_id}"
    async with browser(app) as http:
        await sign_in(http, "fran")
        refused = await _htmx_post(
            http, path, path + "/steps", type="engaged", **_date("on", today())
        )
        assert refused.status_code == 409
        _fragment(refused, "referral-progress")
        assert "govuk-error-summary" in refused.text
        assert "cannot move to engaged" in refused.text

        done = await _htmx_post(
            http, path, path + "/steps", type="contacted", **_date("on", today())
        )
        assert done.status_code == 200
        _fragment(done, "referral-progress")
        assert "Recorded: contacted" in done.text
        assert "<strong>contacted</strong>" in done.text
        offered = set(re.findall(r'name="type" type="radio" value="(\w+)"', done.text))
        assert offered == {"engaged", "disengaged", "withdrawn", "closed"}
        # The message was shown in place: not kept for the next page as well.
        assert "Recorded: contacted" not in (await http.get(path)).text


async def test_a_member_and_a_register_come_back_in_place(app, client, referrer):
    received = today() - timedelta(days=10)
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        first = await _engaged(client, referrer, http, 1, received)
        shown = await http.get("/delivery/groups")
        made = await http.post(
            "/delivery/groups",
            data={
                "_csrf_token": csrf_from(shown.text), "name": "Tuesday", "capacity": "1",
                "facilitators": "fran", **_date("starts_on", received),
            },
        )  # fmt: skip
        group_path = made.headers["location"]
        members = group_path + "/members"

        nobody = await _htmx_post(http, group_path, members, referral_id="", reference="")
        assert nobody.status_code == 422
        _fragment(nobody, "members-section")
        assert 'href="#referral_id"' in nobody.text

        added = await _htmx_post(http, group_path, members, referral_id=first)
        assert added.status_code == 200
        _fragment(added, "members-section")
        assert "Added to the group" in added.text
        assert "This group is full" in added.text
        assert f"/caseload/{first}" in added.text

        shown = await http.get(group_path)
        await http.post(
            group_path + "/sessions",
            data={
                "_csrf_token": csrf_from(shown.text), "number": "1", "kind": "group",
                **_date("held_on", today() - timedelta(days=1)),
            },
        )  # fmt: skip
        group = await http.get(group_path)
        register = re.search(r'href="(/delivery/groups/[^"]+/register)"', group.text).group(1)

        unmarked = await _htmx_post(http, register, register)
        assert unmarked.status_code == 422
        _fragment(unmarked, "register")
        assert f'href="#mark-{first}"' in unmarked.text

        saved = await _htmx_post(http, register, register, **{f"mark-{first}": "attended"})
        assert saved.status_code == 200
        _fragment(saved, "register")
        assert "Register saved" in saved.text
        assert "started" in saved.text  # the register started the referral

        corrected = await _htmx_post(http, register, register, **{f"mark-{first}": "late"})
        assert "Register corrected" in corrected.text
        assert "attended, now late" in corrected.text

        # Without htmx the same form is a plain POST and a redirect.
        page = await http.get(register)
        plain = await http.post(
            register, data={"_csrf_token": csrf_from(page.text), f"mark-{first}": "attended"}
        )
        assert plain.status_code == 303
        assert plain.headers["location"] == register


async def test_an_htmx_post_without_its_token_is_refused(app, client, referrer):
    referral_id = await _referral(client, referrer, today())
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        path = f"/caseload/{referral_id}/steps"
        refused = await http.post(path, data={"type": "contacted"}, headers=HTMX)
        assert refused.status_code == 403
