"""A contract monitor's meeting in a real browser, on ``inspire demo`` data.

The monitor chooses the quarters, reads the dashboard, downloads the Excel workbook and
finds in it the figures the API gives, then opens the reoffending page by engagement and
sees the picture and both comparisons. axe-core finds no serious or critical problem on
any page visited.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from programme.platform.clock import today
from tests.programme.web.conftest import (
    CHROMIUM,
    NO_CHROMIUM,
    run,
    screenshot,
    serious_accessibility_problems,
)

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

FIRST, LAST = "Q1 2024-25", "Q2 2026-27"


def accessible(page: Any, name: str) -> None:
    screenshot(page, f"monitor-{name}")
    assert serious_accessibility_problems(page) == [], name


def demo_data() -> dict[str, str]:
    from programme import demo
    from programme.platform.settings import get_settings

    summary = run(demo.fill(get_settings(), today(), 2021, 300))
    return dict(summary.passwords)


def api_report(live_server: str, password: str, path: str) -> dict[str, Any]:
    login = httpx.post(
        live_server + "/auth/login", json={"username": "demo-monitor", "password": password}
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    response = httpx.get(
        live_server + path, params={"from": FIRST, "to": LAST}, headers=headers, timeout=60
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_monitor_reads_the_dashboard_downloads_the_workbook_and_the_reoffending_page(
    page: Any, live_server: str
) -> None:
    password = demo_data()["demo-monitor"]
    page.goto("/sign-in")
    page.get_by_label("Username").fill("demo-monitor")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Completion and engagement")).to_be_visible()

    page.get_by_label("From", exact=True).select_option(FIRST)
    page.get_by_label("To", exact=True).select_option(LAST)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Dashboard: {FIRST} to {LAST}")
    # Each chart is a picture with words: its title and description name the figures.
    charts = page.get_by_role("img")
    assert charts.count() == 2
    assert "Completion" in (page.locator("svg desc").first.text_content() or "")
    accessible(page, "01-dashboard")

    # The workbook's figures are the API's.
    as_json = api_report(live_server, password, "/reports/quarterly")
    page.get_by_label("Report", exact=True).select_option("quarterly")
    page.get_by_role("radio", name="Excel workbook (.xlsx)").check()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download").click()
    download = downloading.value
    assert download.suggested_filename == "quarterly_Q1_2024-25_to_Q2_2026-27.xlsx"
    book = load_workbook(io.BytesIO(open(download.path(), "rb").read()))  # noqa: SIM115
    sheet = list(book["Quarterly"].iter_rows(values_only=True))
    header, rows = sheet[3], sheet[4:]
    assert sheet[1][0].startswith("Generated on ")
    assert [dict(zip(header, row, strict=True)) for row in rows] == [
        {k: (v if v != "" else None) for k, v in row.items()} for row in as_json["rows"]
    ]
    rates = list(book["Rates"].iter_rows(values_only=True))[4:]
    completion = next(r for r in rates if r[0] == "completion")
    assert completion[1:3] == (
        as_json["completion_rate"]["numerator"],
        as_json["completion_rate"]["denominator"],
    )
    # The page shows the same rate.
    rate = as_json["completion_rate"]
    if rate["rate"] is not None:
        assert f"{rate['rate'] * 100:.0f}%" in page.locator("#rates").locator("..").inner_text()

    # The reoffending page: the picture, both comparisons, the plain words.
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Reoffending").click()
    page.get_by_text("Change what is compared").click()
    page.get_by_label("Compare", exact=True).select_option("engaged")
    page.get_by_label("Follow-up (days)").fill("365")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#comparison-naive")).to_be_visible()
    expect(page.locator("#comparison-corrected")).to_be_visible()
    picture = page.locator("figure img")
    expect(picture).to_be_visible()
    page.wait_for_function("document.querySelector('figure img').naturalWidth > 0", timeout=60000)
    # A sentence about engagement, whether the data allow the comparison or say why not.
    assert "engaged" in page.locator("#headline").inner_text()
    assert "cannot show" in page.locator("#plain-words").inner_text()
    accessible(page, "02-reoffending")
