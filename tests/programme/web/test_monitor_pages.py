"""The contract monitors' pages over HTTP: the dashboard, its downloads, the reoffending page.

The figures are the API's (the same services, published the same way); these tests
check what the pages add: who may open them, the range form, the charts' text
alternatives, downloads named and audited, and a clear message where a model cannot be
fitted."""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import load_workbook

from programme.platform.tables import AuditAction, AuditEvent, Role
from tests.programme.web.helpers import browser, make_account, sign_in

pytestmark = pytest.mark.anyio

RANGE = {"from": "Q3 2026-27", "to": "Q3 2026-27"}


@pytest.fixture
async def monitor(app, clean_database):
    await make_account("mo", Role.monitor)
    async with browser(app) as http:
        assert (await sign_in(http, "mo")).status_code == 303
        yield http


async def test_only_monitors_and_admins_open_the_monitoring_pages(app, clean_database):
    await make_account("fran", Role.facilitator)
    async with browser(app) as http:
        await sign_in(http, "fran")
        for path in ("/monitoring", "/monitoring/reoffending", "/monitoring/download"):
            assert (await http.get(path)).status_code == 403, path
        home = await http.get("/")
        assert "/monitoring" not in home.text
    async with browser(app) as anonymous:
        response = await anonymous.get("/monitoring")
        assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")


async def test_the_dashboard_shows_the_apis_figures_with_text_for_each_chart(
    monitor, make_referrals, client, sign_in
):
    await make_referrals(6, "engaged")
    await make_referrals(5, "contacted", start=6)
    page = await monitor.get("/monitoring", params=RANGE)
    assert page.status_code == 200, page.text
    html = page.text
    assert "Dashboard: Q3 2026-27 to Q3 2026-27" in html
    assert "Engagement rate: <strong>55%</strong> (6 of 11 contacted; 95% interval" in html
    # Charts are inline SVG with a title and a description; no script anywhere on the page.
    assert html.count("<svg") == 2 and 'role="img"' in html
    assert "Referrals, starts and completions per quarter" in html
    assert "Q3 2026-27: 11 referrals, 0 started, 0 completed" in html
    assert "<script>" not in html and "style=" not in html
    assert "Dashboard" in (await monitor.get("/")).text
    rows = await AuditEvent.select(AuditEvent.record_id).where(
        AuditEvent.action == AuditAction.export.value
    )
    assert [r["record_id"] for r in rows] == ["dashboard"]


async def test_small_counts_are_hidden_on_the_dashboard(monitor, make_referrals):
    await make_referrals(3, "engaged")
    html = (await monitor.get("/monitoring", params=RANGE)).text
    assert "Engagement rate: withheld (&lt;5 of &lt;5)" in html
    assert ">3<" not in html


async def test_a_range_the_api_refuses_is_listed_on_the_page(monitor):
    page = await monitor.get("/monitoring", params={"from": "Q4 2026-27", "to": "Q1 2026-27"})
    assert page.status_code == 422
    assert "There is a problem" in page.text and "Comes before" in page.text
    assert 'href="#to"' in page.text


async def test_downloads_from_the_page_are_named_and_audited(monitor, make_referrals):
    await make_referrals(6, "engaged")
    response = await monitor.get(
        "/monitoring/download",
        params={**RANGE, "report": "quarterly", "by": "local_authority", "format": "xlsx"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == (
        'attachment; filename="quarterly_Q3_2026-27_to_Q3_2026-27.xlsx"'
    )
    sheet = load_workbook(io.BytesIO(response.content))["Quarterly"]
    assert sheet["A5"].value == "Rotherham" and sheet["C5"].value == 6
    as_csv = await monitor.get(
        "/monitoring/download", params={**RANGE, "report": "referral-quality", "format": "csv"}
    )
    assert as_csv.headers["content-disposition"].endswith('.csv"')
    refused = await monitor.get("/monitoring/download", params={**RANGE, "format": "pdf"})
    assert refused.status_code == 422
    rows = await AuditEvent.select(AuditEvent.record_id, AuditEvent.detail).where(
        AuditEvent.action == AuditAction.export.value
    )
    details = [
        (r["record_id"], json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"])
        for r in rows
    ]
    assert [(name, d["format"], d.get("by")) for name, d in details] == [
        ("quarterly", "xlsx", "local_authority"),
        ("referral-quality", "csv", "agency"),
    ]


async def test_the_reoffending_page_says_so_when_nothing_can_be_fitted(monitor):
    page = await monitor.get("/monitoring/reoffending")
    assert page.status_code == 200
    assert "These figures cannot be worked out on the data there is" in page.text
    assert "No referral has any follow-up time" in page.text


async def test_the_reoffending_form_lists_every_problem(monitor):
    page = await monitor.get(
        "/monitoring/reoffending",
        params={"horizon_days": "lots", "as_of": "2026-13-01", "group_by": "engaged"},
    )
    assert page.status_code == 422
    assert "Enter the days as a number." in page.text
    assert "Enter the date as YYYY-MM-DD." in page.text
    # What was typed stays in the form.
    assert 'value="lots"' in page.text


async def test_the_reoffending_page_shows_both_comparisons_side_by_side(monitor, make_referrals):
    await make_referrals(12, "engaged", received_on="2026-03-01", moved_on="2026-03-10")
    await make_referrals(12, "contacted", start=12, received_on="2026-03-01", moved_on="2026-03-05")
    page = await monitor.get(
        "/monitoring/reoffending",
        params={"group_by": "engaged", "horizon_days": "182", "landmark_days": "30"},
    )
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="comparison-naive"' in html and 'id="comparison-corrected"' in html
    assert "From the referral date (biased)" in html
    assert "They cannot show that the programme caused any difference" in html
    assert 'id="headline"' in html
    query = "horizon_days=182&amp;group_by=engaged&amp;landmark_days=30"
    assert f"/monitoring/reoffending/plot.svg?{query}" in html
    plot = await monitor.get(
        "/monitoring/reoffending/plot.svg",
        params={"group_by": "engaged", "horizon_days": "182", "landmark_days": "30"},
    )
    assert plot.status_code == 200 and plot.headers["content-type"].startswith("image/svg")
    assert b"Still followed" in plot.content


async def test_covariates_are_ticked_boxes_kept_in_the_form(monitor):
    page = await monitor.get(
        "/monitoring/reoffending",
        params=[("covariates", "risk_level"), ("covariates", "gender"), ("horizon_days", "90")],
    )
    assert page.status_code == 200, page.text
    assert 'value="risk_level" checked' in page.text and 'value="gender" checked' in page.text
    assert 'value="prior_incidents">' in page.text
    refused = await monitor.get("/monitoring/reoffending", params={"covariates": "name"})
    assert refused.status_code == 422 and "is not one of" in refused.text
