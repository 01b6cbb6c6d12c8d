"""Moving and cancelling a group session from the facilitators' pages.

The pages call ``services.move_session`` and ``services.cancel_session``, the
services of ``PATCH /sessions/{id}`` and ``POST /sessions/{id}/cancel``: their
refusals (a session of that kind already that day, a reported quarter) come
back as messages on the form, and every form is a plain POST.

Q2 2026-27 (July to September 2026) is the reported quarter where one is locked.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from programme.platform.clock import today
from programme.platform.tables import Role
from tests.programme.web.helpers import browser, csrf_from, make_account, sign_in, submit
from tests.programme.web.helpers import sign_in as sign_in_page

pytestmark = pytest.mark.anyio

REPORTED = "Q2 2026-27"


def _date(prefix: str, day: date) -> dict[str, str]:
    return {
        f"{prefix}-day": str(day.day),
        f"{prefix}-month": str(day.month),
        f"{prefix}-year": str(day.year),
    }


async def _group_with_sessions(http, starts_on: date, *days: date) -> tuple[str, list[str]]:
    made = await submit(
        http, "/delivery/groups", name="Monday evening", capacity="8", facilitators="fran",
        **_date("starts_on", starts_on),
    )  # fmt: skip
    assert made.status_code == 303, made.text
    group_path = made.headers["location"]
    for number, day in enumerate(days, start=1):
        scheduled = await submit(
            http, group_path, group_path + "/sessions", number=str(number), kind="group",
            **_date("held_on", day),
        )  # fmt: skip
        assert scheduled.status_code == 303, scheduled.text
    shown = await http.get(group_path)
    moves = re.findall(r'href="(/delivery/groups/[^"]+/sessions/[^"]+)/move"', shown.text)
    return group_path, moves


async def test_a_session_moves_and_a_day_already_taken_is_refused(app, clean_database):
    first, second = today() + timedelta(days=7), today() + timedelta(days=14)
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        group_path, (one, _) = await _group_with_sessions(http, today(), first, second)

        form = await http.get(one + "/move")
        assert form.status_code == 200
        assert "Move session 1" in form.text
        assert 'name="override_reason"' not in form.text  # not offered to a facilitator

        nothing = await http.post(one + "/move", data={"_csrf_token": csrf_from(form.text)})
        assert nothing.status_code == 422
        assert 'href="#held_on-day"' in nothing.text
        assert "Say why the session is moved." in nothing.text  # every problem at once

        taken = await submit(http, one + "/move", reason="Room booked", **_date("held_on", second))
        assert taken.status_code == 409
        assert "already has a group session on" in taken.text
        assert 'href="#held_on-day"' in taken.text
        assert 'value="Room booked"' not in taken.text  # a textarea keeps it as text
        assert "Room booked</textarea>" in taken.text

        moved_to = first + timedelta(days=1)
        moved = await submit(
            http, one + "/move", reason="Room booked", **_date("held_on", moved_to)
        )
        assert moved.status_code == 303
        assert moved.headers["location"] == group_path
        group = await http.get(group_path)
        assert f"Session 1 moved to {moved_to:%-d %B %Y}" in group.text
        assert f"moved from {first:%-d %b %Y} to {moved_to:%-d %b %Y} by fran: Room booked" in (
            group.text
        )


async def test_a_session_is_cancelled_once_with_a_reason(app, clean_database):
    day = today() + timedelta(days=3)
    await make_account("fran")
    async with browser(app) as http:
        await sign_in(http, "fran")
        group_path, (one,) = await _group_with_sessions(http, today(), day)
        no_reason = await submit(http, one + "/cancel", reason="   ")
        assert no_reason.status_code == 422
        assert "Say why the session is cancelled." in no_reason.text
        assert 'href="#reason"' in no_reason.text

        form = await http.get(one + "/cancel")
        done = await http.post(
            one + "/cancel", data={"_csrf_token": csrf_from(form.text), "reason": "Snow"}
        )
        assert done.status_code == 303
        group = await http.get(group_path)
        assert "Session 1 cancelled" in group.text
        assert "cancelled</strong>" in group.text
        assert one + "/cancel" not in group.text  # nothing more to offer for it
        assert "cancelled by fran: Snow" in group.text

        again = await http.post(
            one + "/cancel", data={"_csrf_token": csrf_from(form.text), "reason": "Snow"}
        )
        assert again.status_code == 409
        assert "This session is already cancelled." in again.text


async def test_a_reported_quarter_refuses_a_facilitator_and_an_admin_overrides(
    app, client, clean_database, sign_in
):
    alice_api = await sign_in(Role.admin, "alice")
    await make_account("fran")
    await make_account("ada", Role.admin)
    async with browser(app) as http:
        await sign_in_page(http, "fran")
        _, (one, two) = await _group_with_sessions(
            http, date(2026, 9, 1), date(2026, 9, 10), date(2026, 9, 17)
        )
    locked = await client.put(f"/reports/locked-quarters/{REPORTED}", headers=alice_api)
    assert locked.status_code == 200, locked.text

    async with browser(app) as http:
        await sign_in_page(http, "fran")
        refused = await submit(
            http, one + "/move", reason="Wrong day", **_date("held_on", date(2026, 9, 11))
        )
        assert refused.status_code == 409
        assert f"{REPORTED} is reported and locked" in refused.text
        assert "Only an admin can make this change." in refused.text
        cancelled = await submit(http, two + "/cancel", reason="Never held")
        assert cancelled.status_code == 409
        assert "Only an admin can make this change." in cancelled.text

    async with browser(app) as http:
        await sign_in_page(http, "ada")
        form = await http.get(one + "/move")
        assert 'name="override_reason"' in form.text
        asked = await submit(
            http, one + "/move", reason="Wrong day", **_date("held_on", date(2026, 9, 11))
        )
        assert asked.status_code == 409
        assert 'href="#override_reason"' in asked.text
        done = await submit(
            http, one + "/move", reason="Wrong day", override_reason="Contract manager agreed",
            **_date("held_on", date(2026, 9, 11)),
        )  # fmt: skip
        assert done.status_code == 303, done.text


async def test_move_and_cancel_need_the_csrf_token_and_a_facilitators_own_group(
    app, clean_database
):
    await make_account("fran")
    await make_account("sam")
    await make_account("pc", Role.referrer)
    async with browser(app) as http:
        await sign_in(http, "fran")
        group_path, (one,) = await _group_with_sessions(http, today(), today() + timedelta(days=2))
        for change in ("/move", "/cancel"):
            tokenless = await http.post(one + change, data={"reason": "x"})
            assert tokenless.status_code == 403
    async with browser(app) as http:
        await sign_in(http, "sam")  # another facilitator's group
        for change in ("/move", "/cancel"):
            assert (await http.get(one + change)).status_code == 403
    async with browser(app) as http:
        await sign_in(http, "pc")
        for change in ("/move", "/cancel"):
            assert (await http.get(one + change)).status_code == 403
    async with browser(app) as http:
        await sign_in(http, "fran")
        group = await http.get(group_path)
        assert "cancelled</strong>" not in group.text
