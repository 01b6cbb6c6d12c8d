"""The quarterly pack from the dashboard: the API's pack, for monitors and admins only,
named and audited, a bad quarter or format refused."""

from __future__ import annotations

import json

import pytest

from programme.platform.tables import AuditAction, AuditEvent, Role
from tests.programme.web.helpers import browser, make_account
from tests.programme.web.helpers import sign_in as browser_sign_in

pytestmark = pytest.mark.anyio

QUARTER = "Q3 2026-27"


async def test_the_dashboard_offers_the_pack_and_the_page_gives_the_apis_pack(
    app, clean_database, make_referrals, client, sign_in
):
    await make_referrals(6, "engaged")
    await make_account("mo", Role.monitor)
    async with browser(app) as http:
        assert (await browser_sign_in(http, "mo")).status_code == 303
        dashboard = await http.get("/monitoring", params={"from": QUARTER, "to": QUARTER})
        assert 'action="/monitoring/pack"' in dashboard.text
        assert f'<option value="{QUARTER}" selected>' in dashboard.text
        page = await http.get("/monitoring/pack", params={"quarter": QUARTER, "format": "html"})
        assert page.status_code == 200, page.text
        assert page.headers["content-disposition"] == (
            'attachment; filename="inspire-pack-Q3-2026-27.html"'
        )
        pdf = await http.get("/monitoring/pack", params={"quarter": QUARTER})
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        for bad in ({"quarter": QUARTER, "format": "docx"}, {"quarter": "Q3 2099-00"}):
            assert (await http.get("/monitoring/pack", params=bad)).status_code == 422
    token = await sign_in(Role.monitor, "mo-api")
    api = await client.get(
        "/reports/pack", params={"quarter": QUARTER, "format": "html"}, headers=token
    )

    def figures(html: str) -> str:
        return html.split('<section id="quarterly">', 1)[1].split('<section id="reoffending">')[0]

    assert figures(page.text) == figures(api.text)
    rows = await AuditEvent.select(AuditEvent.username, AuditEvent.detail).where(
        (AuditEvent.action == AuditAction.export.value) & (AuditEvent.record_id == "pack")
    )
    formats = [
        (
            r["username"],
            (json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"])["format"],
        )
        for r in rows
    ]
    assert formats == [("mo", "html"), ("mo", "pdf"), ("mo-api", "html")]


async def test_only_monitors_and_admins_get_the_pack_page(app, clean_database):
    await make_account("fran", Role.facilitator)
    async with browser(app) as http:
        await browser_sign_in(http, "fran")
        assert (await http.get("/monitoring/pack", params={"quarter": QUARTER})).status_code == 403
    async with browser(app) as anonymous:
        response = await anonymous.get("/monitoring/pack", params={"quarter": QUARTER})
        assert response.status_code == 303


async def test_fields_left_empty_mean_the_current_quarter_as_a_pdf(app, clean_database):
    await make_account("mo", Role.monitor)
    async with browser(app) as http:
        await browser_sign_in(http, "mo")
        response = await http.get("/monitoring/pack", params={"quarter": "", "format": ""})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"].startswith(
            'attachment; filename="inspire-pack-Q'
        )
