"""The caseload page in pages (issue 15 part 6), over HTTP as a browser without
JavaScript sends it: each section shows fifty lines of those waiting longest, says how
many there are in all and links to its other pages by number only; following a link
moves that section alone; only the lines shown are audited; a page number out of range
is refused or shown as the last page, never a server error; and the search still finds
someone on the last page.
"""

from __future__ import annotations

import html
import re
import sys
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from programme.delivery.pages import page_numbers
from programme.platform import database
from programme.platform.tables import AuditEvent
from tests.programme.web.helpers import browser, make_account, sign_in, submit

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[3] / "bench"
SECTIONS = ("waiting", "contacted", "engaged")
PAGE_LINK = re.compile(r'href="(/caseload[^"#]*#[a-z]+)"')
ONLY_PAGE_NUMBERS = re.compile(
    r"^/caseload(\?(waiting|contacted|engaged)_page=\d+(&(waiting|contacted|engaged)_page=\d+)*)?#(waiting|contacted|engaged)$"
)
LINE = re.compile(r'<a class="govuk-link" href="/caseload/([0-9a-f-]{36})">([^<]+)</a>')


@pytest.fixture
async def national(client):
    sys.path.insert(0, str(BENCH))
    try:
        from national_data import generate
    finally:
        sys.path.remove(str(BENCH))
    connection = await asyncpg.connect(**database.engine().config)
    try:
        await generate(
            connection, 3_000, 1_000, date(2021, 7, 1), date(2026, 6, 30), date(2026, 9, 30)
        )
    finally:
        await connection.close()
    await make_account("fran")


def _section(page: str, name: str) -> str:
    """The part of the caseload page that is section ``name``."""
    after = page.split(f'id="{name}"', 1)[1]
    following = [s for s in SECTIONS[SECTIONS.index(name) + 1 :]]
    return after.split(f'id="{following[0]}"', 1)[0] if following else after


def _total(section: str) -> int:
    return int(re.search(r"\((\d+)\)</h2>", "<h2" + section).group(1))


def _lines(section: str) -> list[tuple[str, str]]:
    return LINE.findall(section)


async def _read_audited_since(before: int) -> list[str]:
    rows = (
        await AuditEvent.select(AuditEvent.record_id, AuditEvent.record_type)
        .where(AuditEvent.id > 0)
        .order_by(AuditEvent.id)
        .offset(before)
    )
    return [row["record_id"] for row in rows if row["record_type"] == "referral"]


async def test_each_section_is_a_page_with_links_to_the_others(app, national):
    async with browser(app) as http:
        await sign_in(http, "fran")
        before = await AuditEvent.count()
        first = await http.get("/caseload")
        assert first.status_code == 200
        page = first.text
        shown: list[str] = []
        for name in SECTIONS:
            section = _section(page, name)
            total = _total(section)
            lines = _lines(section)
            assert total > 100 and len(lines) == 50, name
            assert f"Showing 1 to 50 of {total}" in section
            links = [html.unescape(link) for link in PAGE_LINK.findall(section)]
            assert links and all(ONLY_PAGE_NUMBERS.match(link) for link in links), links
            assert f'href="/caseload?{name}_page=2#{name}" rel="next"' in section
            last = -(-total // 50)
            assert f'aria-label="Page {last}"' in section  # the last page is always linked
            shown += [referral_id for referral_id, _ in lines]
        # Only the lines shown were audited as read, each once.
        assert sorted(await _read_audited_since(before)) == sorted(shown)

        # The next page of those waiting: the next fifty, the other sections unmoved.
        second = (await http.get("/caseload?waiting_page=2")).text
        assert "Showing 51 to 100 of" in _section(second, "waiting")
        assert not set(_lines(_section(second, "waiting"))) & set(_lines(_section(page, "waiting")))
        assert _lines(_section(second, "contacted")) == _lines(_section(page, "contacted"))
        # Another section's links keep the page this one is at.
        assert (
            'href="/caseload?waiting_page=2&amp;contacted_page=2#contacted" rel="next"'
            in _section(second, "contacted")
        )
        assert 'href="/caseload#waiting" rel="prev"' in _section(second, "waiting")


async def test_out_of_range_page_numbers_are_refused_or_the_last_page(app, national):
    async with browser(app) as http:
        await sign_in(http, "fran")
        page = (await http.get("/caseload")).text
        total = _total(_section(page, "engaged"))
        last = -(-total // 50)
        for bad in ("0", "-1", "two", "1.5", "", str(10**12), "9" * 40):
            refused = await http.get("/caseload", params={"engaged_page": bad})
            assert 400 <= refused.status_code < 500, (bad, refused.status_code)
        past = await http.get("/caseload", params={"engaged_page": str(last + 1000)})
        assert past.status_code == 200
        at_last = await http.get("/caseload", params={"engaged_page": str(last)})
        engaged = _section(past.text, "engaged")
        assert _lines(engaged) == _lines(_section(at_last.text, "engaged"))
        assert f"to {total} of {total}" in engaged
        assert 'rel="next"' not in engaged


async def test_the_search_finds_someone_on_the_last_page(app, national):
    async with browser(app) as http:
        await sign_in(http, "fran")
        page = (await http.get("/caseload")).text
        last = -(-_total(_section(page, "contacted")) // 50)
        at_last = (await http.get(f"/caseload?contacted_page={last}")).text
        referral_id, reference = _lines(_section(at_last, "contacted"))[-1]
        assert referral_id not in page
        found = await submit(http, "/caseload", "/caseload/search", reference=reference, name="")
        assert found.status_code == 200
        assert f"/caseload/{referral_id}" in found.text


def test_page_numbers_are_the_first_the_last_and_around_this_one():
    assert page_numbers(1, 1) == [1]
    assert page_numbers(1, 2) == [1, 2]
    assert page_numbers(1, 9) == [1, 2, None, 9]
    assert page_numbers(3, 9) == [1, 2, 3, 4, None, 9]
    assert page_numbers(5, 9) == [1, None, 4, 5, 6, None, 9]
    assert page_numbers(9, 9) == [1, None, 8, 9]
