"""The quarterly pack: one document for a contract meeting, as HTML and as a PDF laid out
from it. Monitors and admins only, audited, a bad quarter or format refused; the figures
are the quarterly report's; no name, date of birth or phone number anywhere in it."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pytest
from pypdf import PdfReader

from programme.platform.tables import AuditAction, AuditEvent, Role
from tests.builders import PHONE, VICTIM, VICTIM_TRACES, good_referral, inspire
from tests.outcomes.test_feedback_report import victims_with_feedback

pytestmark = pytest.mark.anyio

QUARTER = "Q3 2026-27"
YEAR_SO_FAR = {"from": "Q1 2026-27", "to": QUARTER}
PERSONAL = (
    "Jordan",
    "Testperson",
    "1990-05-17",
    "17/05/1990",
    "17 May 1990",
    "Person",
    "Example",
    PHONE,
    PHONE.replace(" ", ""),
    "496 0",
    "4960",
    *VICTIM_TRACES,
)
"""Names, dates of birth and phone numbers of everyone in the data below (the builders'
people are Person<n> Example, 0114 496 0<n>)."""


@pytest.fixture
async def monitor(client, sign_in):
    return await sign_in(Role.monitor, "mo")


@pytest.fixture
async def people(client, sign_in, make_referrals):
    """Q3 2026-27: 6 engaged, 5 only contacted, one more naming a victim; victims'
    feedback in Q1 and Q3; so every section has figures, some of them small."""
    await make_referrals(6, "engaged")
    await make_referrals(5, "contacted", start=6)
    referrer = await sign_in(Role.referrer, "rita")
    named = await client.post("/referrals", json=good_referral(victims=[VICTIM]), headers=referrer)
    assert named.status_code == 201, named.text
    await victims_with_feedback(client, sign_in, ["stopped"] * 4 + ["same"] * 3, "2026-05-10", n=1)
    await victims_with_feedback(client, sign_in, ["reduced", "worse"], "2026-10-10", n=2)


def pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


class Rows(HTMLParser):
    """The year-to-date table's cells: {quarter: {column: text}}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._row: str | None = None
        self._column: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-quarter"):
            self._row = found["data-quarter"]
            self.rows[self._row] = {}
        elif tag == "td" and self._row and found.get("data-column"):
            self._column = found["data-column"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._column = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row and self._column:
            self.rows[self._row][self._column] = data.strip()


def percent(value: float | None) -> str:
    return "\N{EN DASH}" if value is None else f"{value * 100:.0f}%"


async def test_the_pack_as_html_holds_the_quarterly_reports_figures(client, monitor, people):
    response = await client.get(
        "/reports/pack", params={"quarter": QUARTER, "format": "html"}, headers=monitor
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-disposition"] == (
        'attachment; filename="inspire-pack-Q3-2026-27.html"'
    )
    html = response.text
    parser = Rows()
    parser.feed(html)
    report = (await client.get("/reports/quarterly", params=YEAR_SO_FAR, headers=monitor)).json()
    assert list(parser.rows) == [row["quarter"] for row in report["rows"]]
    for row in report["rows"]:
        shown = parser.rows[row["quarter"]]
        assert shown == {c: str(row[c]) for c in shown}, row["quarter"]
        assert len(shown) == 10
    assert parser.rows["Total"]["referrals"] == "14"  # 2 in Q1 (the feedback givers)
    # Q1's 2 are under 5, and 14 less 12 would give them away: the 12 is withheld too.
    assert parser.rows[QUARTER]["referrals"] == "[c]"
    assert parser.rows[QUARTER]["engaging"] == "6"
    assert "&lt;5" in html  # 5 contacted-only and 1 with a victim: the small counts hidden
    # The rates with their intervals, for the quarter and the year, as the API gives them.
    for params in ({"from": QUARTER, "to": QUARTER}, YEAR_SO_FAR):
        rates = (await client.get("/reports/quarterly", params=params, headers=monitor)).json()
        engagement = rates["engagement_rate"]
        assert (
            f"{percent(engagement['rate'])}</strong> ({engagement['numerator']} of "
            f"{engagement['denominator']} contacted; 95% interval "
            f"{percent(engagement['ci_low'])} to {percent(engagement['ci_high'])})"
        ) in html
    for section in (
        "The quarter and the year to date",
        "Completion and engagement",
        "Trend",
        "Referral quality by agency",
        "What victims and survivors say",
        "Reoffending after referral",
        "Definitions used",
        "Engagement rate (the agreed definition)",
        "Data cut-off",
    ):
        assert section in html, section
    assert "South Yorkshire Police" in html
    # Self-contained: its style inside it, nothing fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:|/)', html)


async def test_the_pdf_is_the_same_pack_and_names_no_one(client, monitor, people):
    response = await client.get(
        "/reports/pack", params={"quarter": QUARTER, "format": "pdf"}, headers=monitor
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        'attachment; filename="inspire-pack-Q3-2026-27.pdf"'
    )
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    pages = PdfReader(io.BytesIO(response.content)).pages
    assert len(pages) >= 8  # the cover, then each section on a page of its own
    assert "Quarterly contract monitoring pack" in text
    assert "Page 1 of" in text and "Data cut-off 2026-" in text
    assert "Definitions used" in text
    html = (
        await client.get(
            "/reports/pack", params={"quarter": QUARTER, "format": "html"}, headers=monitor
        )
    ).text
    for marker in PERSONAL:
        assert marker not in text, marker
        assert marker not in html, marker


async def test_only_monitors_and_admins_get_the_pack_and_each_is_audited(client, sign_in, monitor):
    params = {"quarter": QUARTER, "format": "html"}
    assert (await client.get("/reports/pack", params=params)).status_code == 401
    for role in (Role.referrer, Role.facilitator, Role.victim_worker):
        token = await sign_in(role, f"someone-{role.value}")
        assert (await client.get("/reports/pack", params=params, headers=token)).status_code == 403
    admin = await sign_in(Role.admin, "ada")
    for token in (monitor, admin):
        assert (await client.get("/reports/pack", params=params, headers=token)).status_code == 200
    rows = await AuditEvent.select(
        AuditEvent.username, AuditEvent.record_id, AuditEvent.detail
    ).where(AuditEvent.action == AuditAction.export.value)
    taken = [
        (
            r["username"],
            r["record_id"],
            json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"],
        )
        for r in rows
    ]
    detail = {"from": QUARTER, "to": QUARTER, "format": "html"}
    assert taken == [("mo", "pack", detail), ("ada", "pack", detail)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"quarter": QUARTER, "format": "docx"}, "format"),
        ({"quarter": "Q5 2026-27"}, "quarter"),
        ({"quarter": "2026 Q3"}, "quarter"),
        ({"quarter": "Q3 2026-28"}, "quarter"),
        ({"quarter": "Q1 2099-00"}, "quarter"),
        ({}, "quarter"),
    ],
)
async def test_a_bad_quarter_or_format_is_a_422(client, monitor, params, field):
    response = await client.get("/reports/pack", params=params, headers=monitor)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_the_cli_writes_the_pack(tmp_path, client, monitor, people):
    pdf, html = tmp_path / "pack.pdf", tmp_path / "pack.html"
    for out in (pdf, html):
        done = inspire("report", "pack", "--quarter", QUARTER, "--out", str(out))
        assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "Quarterly contract monitoring pack: Q3 2026-27" in pdf_text(pdf.read_bytes())
    parser = Rows()
    parser.feed(html.read_text())
    report = (await client.get("/reports/quarterly", params=YEAR_SO_FAR, headers=monitor)).json()
    assert parser.rows["Total"]["referrals"] == str(report["rows"][-1]["referrals"])
    refused = inspire("report", "pack", "--quarter", "Q9 2026-27", "--out", str(pdf))
    assert refused.returncode != 0 and "--quarter" in refused.stderr
    wrong = inspire("report", "pack", "--quarter", QUARTER, "--out", str(tmp_path / "pack.docx"))
    assert wrong.returncode != 0 and ".pdf or .html" in wrong.stderr


def test_the_pdf_is_laid_out_without_fetching_anything(tmp_path):
    """Pictures travel inside the pack (data: addresses); the renderer reads no file of the
    server's and calls no address, whatever a text in the pack might say."""
    from analysis.pack import render_pdf

    picture = tmp_path / "picture.svg"
    picture.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="50">'
        '<text x="5" y="30" font-size="20">FROMTHEDISK</text></svg>'
    )
    inside = "data:image/svg+xml," + picture.read_text().replace("FROMTHEDISK", "INSIDE")
    html = f"<p>pack</p><img src=\"{picture.as_uri()}\"><img src='{inside}'>"
    text = pdf_text(render_pdf(html))
    assert "pack" in text and "INSIDE" in text
    assert "FROMTHEDISK" not in text


async def test_a_picture_with_no_one_left_to_draw_is_a_422_and_the_pack_still_comes(
    client, monitor, make_referrals
):
    """Everyone engaged: nobody is still followed in the 'not engaged' group and no one at
    all at the landmark yet; the plot says so (not a 500) and the pack goes without it."""
    await make_referrals(6, "engaged")
    plot = await client.get(
        "/analysis/reoffending/plot.svg", params={"group_by": "engaged"}, headers=monitor
    )
    assert plot.status_code == 422, plot.text
    response = await client.get(
        "/reports/pack", params={"quarter": QUARTER, "format": "html"}, headers=monitor
    )
    assert response.status_code == 200, response.text
    assert "data:image/svg+xml" not in response.text
