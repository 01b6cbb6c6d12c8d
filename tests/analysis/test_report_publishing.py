"""The three reports as councils ask for them: small counts hidden in every one, by agency
or by local authority, as CSV or Excel with a filename, the rates and the definitions,
an unknown format refused, and every download in the audit trail."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from openpyxl import load_workbook

from programme.platform.tables import AuditAction, AuditEvent, Role
from tests.builders import distinct_referral, inspire
from tests.outcomes.test_feedback_report import victims_with_feedback

pytestmark = pytest.mark.anyio

Q = {"from": "Q3 2026-27", "to": "Q3 2026-27"}
REPORTS = ("/reports/quarterly", "/reports/referral-quality", "/reports/victim-feedback")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
async def monitor(client, sign_in):
    return await sign_in(Role.monitor, "mo")


@pytest.fixture
async def referrals(make_referrals, client, sign_in):
    """Q3 2026-27: 6 engaged and 5 only contacted from Rotherham (the builders' area),
    and 2 from Sheffield, all from South Yorkshire Police; 1 return."""
    await make_referrals(6, "engaged")
    await make_referrals(5, "contacted", start=6)
    referrer = await sign_in(Role.referrer, "rotherham-pc")
    for n in (20, 21):
        body = distinct_referral(
            n,
            local_authority="Sheffield",
            received_on="2026-10-03",
            consent_obtained_on="2026-10-03",
        )
        sent = await client.post("/referrals", json=body, headers=referrer)
        assert sent.status_code == 201, sent.text
    refused = distinct_referral(30, consent_given=False, received_on="2026-10-04")
    assert (await client.post("/referrals", json=refused, headers=referrer)).status_code == 422


def cells(content: bytes) -> dict[str, list[list[Any]]]:
    book = load_workbook(io.BytesIO(content))
    return {sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book}


def table(rows: list[list[Any]]) -> list[dict[str, Any]]:
    """A sheet's table: its header is the fourth row (title, cut-off line, empty line)."""
    header = rows[3]
    return [dict(zip(header, row, strict=True)) for row in rows[4:]]


async def test_an_unsupported_format_is_a_422_not_json(client, monitor):
    for path in REPORTS:
        response = await client.get(path, params={**Q, "format": "pdf"}, headers=monitor)
        assert response.status_code == 422, (path, response.text)
        (problem,) = response.json()["errors"]
        assert problem["field"] == "format" and "xlsx" in problem["message"]


async def test_small_counts_are_hidden_in_the_quarterly_report(client, monitor, referrals):
    body = (await client.get("/reports/quarterly", params=Q, headers=monitor)).json()
    quarter, total = body["rows"]
    # 13 accepted, 1 returned, 11 contacted, 6 engaged: the return is under 5, and 14
    # referrals less 13 accepted would give it away, so the accepted are withheld too.
    assert (quarter["accepted"], quarter["returned"], quarter["referrals"]) == ("[c]", "<5", 14)
    assert (quarter["contacted"], quarter["engaging"], quarter["started"]) == (11, 6, 0)
    assert (total["accepted"], total["returned"]) == ("[c]", "<5")
    # 6 of 11 contacted engaged: every part at least 5, so the rate is shown.
    rate = body["engagement_rate"]
    assert (rate["numerator"], rate["denominator"]) == (6, 11)
    assert rate["rate"] == pytest.approx(6 / 11) and rate["ci_low"] < 6 / 11 < rate["ci_high"]
    assert body["suppression_threshold"] == 5
    assert any("'<5'" in note for note in body["notes"])


async def test_a_rate_that_would_reveal_a_small_count_is_withheld(client, monitor, make_referrals):
    await make_referrals(6, "engaged")
    await make_referrals(2, "contacted", start=6)
    rate = (await client.get("/reports/quarterly", params=Q, headers=monitor)).json()[
        "engagement_rate"
    ]
    # 6 of 8: the 2 who did not engage would be 8 - 6.
    assert rate == {"numerator": 6, "denominator": 8, "rate": None, "ci_low": None, "ci_high": None}


async def test_small_counts_are_hidden_in_referral_quality(client, monitor, referrals):
    rows = (await client.get("/reports/referral-quality", params=Q, headers=monitor)).json()["rows"]
    (row,) = rows
    # 14 received less 13 accepted would give the one return away: 13 is withheld too.
    assert (row["agency"], row["received"], row["accepted"], row["returned"]) == (
        "South Yorkshire Police",
        14,
        "[c]",
        "<5",
    )
    assert row["reasons"]["consent_missing"] == "<5"
    assert row["reasons"]["out_of_area"] == 0
    # 6 of 13 engaged: the share would give the withheld 13 back.
    assert row["engaged"] == 6 and row["share_engaged"] is None


async def test_small_counts_are_hidden_in_victim_feedback(client, sign_in, monitor):
    await victims_with_feedback(client, sign_in, ["stopped"] * 6 + ["same"] * 2, "2026-10-10")
    body = (await client.get("/reports/victim-feedback", params=Q, headers=monitor)).json()
    (cell,) = body["rows"]
    assert (cell["responded"], cell["stopped_or_reduced"], cell["share"]) == (8, 6, None)


async def test_every_report_by_local_authority(client, monitor, referrals, sign_in):
    by = {**Q, "by": "local_authority"}
    body = (await client.get("/reports/quarterly", params=by, headers=monitor)).json()
    assert body["by"] == "local_authority"
    rows = {(r["local_authority"], r["quarter"]): r for r in body["rows"]}
    # Rotherham's 11 would give Sheffield's small count away from the programme's 13 (and
    # its referrals, with no returns, would give the 11 back): both withheld.
    rotherham = rows[("Rotherham", "Q3 2026-27")]
    assert (rotherham["accepted"], rotherham["referrals"]) == ("[c]", "[c]")
    assert rows[("Sheffield", "Q3 2026-27")]["accepted"] == "<5"
    # A return keeps nothing about the person, so no area either: said so, not dropped.
    assert rows[("not kept (returned referrals)", "Total")]["returned"] == "<5"
    # 14 referrals less 13 accepted would give the one return away; and the programme's
    # own 14 and 13 (taken as known, from the report without a breakdown) less the areas
    # would too: withheld beside it.
    assert (rows[("All", "Total")]["accepted"], rows[("All", "Total")]["returned"]) == (
        "[c]",
        "<5",
    )
    rates = {g["group"]: g for g in body["group_rates"]}
    assert rates["Rotherham"]["engagement_rate"]["numerator"] == 6

    quality = (await client.get("/reports/referral-quality", params=by, headers=monitor)).json()
    areas = {r["local_authority"]: r for r in quality["rows"]}
    assert areas["Rotherham"]["accepted"] == "[c]" and areas["Sheffield"]["accepted"] == "<5"
    assert areas["not kept (returned referrals)"]["returned"] == "<5"

    by_agency = (
        await client.get("/reports/quarterly", params={**Q, "by": "agency"}, headers=monitor)
    ).json()
    assert {r["agency"] for r in by_agency["rows"]} == {"South Yorkshire Police", "All"}


async def test_victim_feedback_by_local_authority_and_agency(client, sign_in, monitor):
    await victims_with_feedback(client, sign_in, ["stopped"] * 5 + ["same"] * 5, "2026-10-10")
    for by, group in (("local_authority", "Rotherham"), ("agency", "South Yorkshire Police")):
        body = (
            await client.get("/reports/victim-feedback", params={**Q, "by": by}, headers=monitor)
        ).json()
        (cell,) = body["rows"]
        assert body["by"] == by and cell["group"] == group
        assert (cell["responded"], cell["stopped_or_reduced"]) == (10, 5)
        assert cell["share"] == pytest.approx(0.5)


async def test_csv_downloads_are_named_and_carry_the_rates_and_definitions(
    client, monitor, referrals
):
    response = await client.get(
        "/reports/quarterly", params={**Q, "format": "csv"}, headers=monitor
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="quarterly_Q3_2026-27_to_Q3_2026-27.csv"'
    )
    blocks = response.text.split("\n\n")
    rows = list(csv.DictReader(io.StringIO(blocks[0])))
    assert [r["quarter"] for r in rows] == ["Q3 2026-27", "Total"]
    assert rows[0]["returned"] == "<5"
    rates = list(csv.DictReader(io.StringIO(blocks[1].split("\n", 1)[1])))
    engagement = next(r for r in rates if r["rate"] == "engagement")
    assert (engagement["numerator"], engagement["denominator"]) == ("6", "11")
    assert engagement["share"] == f"{6 / 11:.3f}"
    assert "agreed definition" in blocks[2] and "'<5'" in blocks[2]
    assert "generated_on," in blocks[3] and "data_cut_off," in blocks[3]
    for path in REPORTS[1:]:
        named = await client.get(path, params={**Q, "format": "csv"}, headers=monitor)
        assert named.headers["content-disposition"].startswith("attachment; filename=")
        assert named.headers["content-disposition"].endswith('.csv"')
        assert "Definitions" in named.text and "generated_on," in named.text


async def test_the_workbook_holds_the_same_figures_as_the_json(client, monitor, referrals):
    for path, params in (
        ("/reports/quarterly", Q),
        ("/reports/quarterly", {**Q, "by": "local_authority"}),
        ("/reports/referral-quality", Q),
    ):
        as_json = (await client.get(path, params=params, headers=monitor)).json()
        response = await client.get(path, params={**params, "format": "xlsx"}, headers=monitor)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == XLSX
        assert response.headers["content-disposition"].endswith('.xlsx"')
        sheets = cells(response.content)
        first = next(iter(sheets.values()))
        assert first[1][0].startswith("Generated on ") and "data cut-off" in first[1][0]
        rows = table(first)
        assert len(rows) == len(as_json["rows"])
        for from_xlsx, from_json in zip(rows, as_json["rows"], strict=True):
            flat = {**from_json, **from_json.get("reasons", {})}
            flat.pop("reasons", None)
            for column, value in from_xlsx.items():
                expected = flat[column]
                if isinstance(expected, float):
                    assert value == pytest.approx(expected), column
                else:
                    # Numbers as numbers, '<5' as text, nothing as an empty cell.
                    assert value == (expected if expected != "" else None), column
        assert "Definitions" in sheets
    rates = table(cells(
        (await client.get("/reports/quarterly", params={**Q, "format": "xlsx"}, headers=monitor)
         ).content)["Rates"])  # fmt: skip
    engagement = next(r for r in rates if r["rate"] == "engagement")
    assert (engagement["numerator"], engagement["denominator"]) == (6, 11)
    assert engagement["share"] == pytest.approx(6 / 11)


async def test_the_feedback_workbook_matches_the_json(client, sign_in, monitor):
    await victims_with_feedback(client, sign_in, ["stopped"] * 7 + ["worse"] * 6, "2026-10-10")
    as_json = (await client.get("/reports/victim-feedback", params=Q, headers=monitor)).json()
    response = await client.get(
        "/reports/victim-feedback", params={**Q, "format": "xlsx"}, headers=monitor
    )
    (row, total) = table(cells(response.content)["Victim feedback"])
    (cell,) = as_json["rows"]
    assert (row["responded"], row["stopped_or_reduced"]) == (cell["responded"], 7)
    assert row["share"] == pytest.approx(cell["share"])
    assert total["quarter"] == "all" and total["responded"] == as_json["total_responded"]


async def test_every_download_is_audited(client, monitor, referrals):
    for path in REPORTS:
        for fmt in ("json", "csv", "xlsx"):
            response = await client.get(path, params={**Q, "format": fmt}, headers=monitor)
            assert response.status_code == 200, response.text
    rows = await AuditEvent.select(AuditEvent.record_id, AuditEvent.detail).where(
        AuditEvent.action == AuditAction.export.value
    )
    taken = {
        (
            r["record_id"],
            (json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"])["format"],
        )
        for r in rows
    }
    assert taken == {
        (report, fmt)
        for report in ("quarterly", "referral-quality", "victim-feedback")
        for fmt in ("json", "csv", "xlsx")
    }


async def test_the_cli_writes_the_workbook_the_api_gives(tmp_path, client, monitor, referrals):
    out = tmp_path / "quarterly.xlsx"
    done = inspire(
        "report", "quarterly", "--from", "Q3 2026-27", "--to", "Q3 2026-27",
        "--format", "xlsx", "--out", str(out), "--by", "local_authority",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    as_json = (
        await client.get(
            "/reports/quarterly", params={**Q, "by": "local_authority"}, headers=monitor
        )
    ).json()
    rows = table(cells(out.read_bytes())["Quarterly"])
    assert [(r["local_authority"], r["quarter"], r["accepted"], r["returned"]) for r in rows] == [
        (r["local_authority"], r["quarter"], r["accepted"], r["returned"]) for r in as_json["rows"]
    ]
    quality = tmp_path / "quality.xlsx"
    done = inspire(
        "report", "referral-quality", "--from", "Q3 2026-27", "--to", "Q3 2026-27",
        "--format", "xlsx", "--out", str(quality),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = table(cells(quality.read_bytes())["Referral quality"])
    assert (row["agency"], row["accepted"], row["returned"]) == (
        "South Yorkshire Police",
        "[c]",
        "<5",
    )
    feedback = tmp_path / "feedback.xlsx"
    done = inspire(
        "report", "victim-feedback", "--from", "Q3 2026-27", "--to", "Q3 2026-27",
        "--format", "xlsx", "--out", str(feedback),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Victim feedback" in cells(feedback.read_bytes())
    refused = inspire("report", "quarterly", "--from", "Q3 2026-27", "--to", "Q3 2026-27",
                      "--format", "xlsx")  # fmt: skip
    assert refused.returncode != 0 and "--out" in refused.stderr
