"""The quarterly report reproduces the council's published table from imported referrals."""

from __future__ import annotations

import csv
import io
import json

import pytest

from programme.platform.tables import Role
from tests.analysis.seed_table import build_csv, published
from tests.builders import distinct_referral, inspire
from tests.counting import UNSUPPRESSED, app  # noqa: F401 - every count as it is

pytestmark = pytest.mark.anyio

RANGE = ["--from", "Q3 2021-22", "--to", "Q2 2023-24"]


@pytest.mark.smoke
async def test_the_seed_table_is_reproduced_exactly(tmp_path, clean_database):
    source = tmp_path / "seed-referrals.csv"
    source.write_text(build_csv())
    imported = inspire("import", "referrals", str(source), "--create-agencies")
    assert imported.returncode == 0, imported.stderr
    quarters = [row for row in published() if row["quarter"] != "Total"]
    returned = sum(
        min(int(q["referrals"]) // 6, int(q["referrals"]) - int(q["engaging"])) for q in quarters
    )
    assert f"imported {573 - returned}, returned {returned}, already present 0" in imported.stdout
    # One legacy start with no contact or engagement date recorded: accepted, with warnings.
    assert "warnings 2" in imported.stdout

    # The council published its small counts: reproduced here without suppression.
    report = inspire("report", "quarterly", *RANGE, "--format", "csv", env=UNSUPPRESSED)
    assert report.returncode == 0, report.stderr
    # The table, then (after an empty line) the rates and the definitions.
    rows = list(csv.DictReader(io.StringIO(report.stdout.split("\n\n")[0])))
    columns = ["quarter", "referrals", "engaging", "started", "completed"]
    assert [{c: row[c] for c in columns} for row in rows] == published()
    assert rows[-1]["quarter"] == "Total"
    assert (
        rows[-1]["referrals"],
        rows[-1]["engaging"],
        rows[-1]["started"],
        rows[-1]["completed"],
    ) == ("573", "84", "78", "43")

    as_json = json.loads(
        inspire("report", "quarterly", *RANGE, "--format", "json", env=UNSUPPRESSED).stdout
    )
    rate = as_json["completion_rate"]
    assert (rate["numerator"], rate["denominator"]) == (43, 78)
    assert round(rate["rate"] * 100) == 55
    assert rate["ci_low"] < 0.55 < rate["ci_high"]


async def test_every_quarter_in_the_range_appears_even_if_empty(client, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/reports/quarterly", params={"from": "Q1 2020-21", "to": "Q4 2020-21"}, headers=monitor
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["quarter"] for r in body["rows"]] == [
        "Q1 2020-21",
        "Q2 2020-21",
        "Q3 2020-21",
        "Q4 2020-21",
        "Total",
    ]
    assert all(r["referrals"] == 0 for r in body["rows"])
    assert body["completion_rate"]["rate"] is None


async def test_columns_count_events_in_their_own_quarter(client, sign_in):
    referrer = await sign_in(Role.referrer, "rita")
    fran = await sign_in(Role.facilitator, "fran")
    monitor = await sign_in(Role.monitor, "mo")
    body = distinct_referral(1, received_on="2026-06-20", consent_obtained_on="2026-06-20")
    referral = (await client.post("/referrals", json=body, headers=referrer)).json()
    for step, on in (("contacted", "2026-06-25"), ("engaged", "2026-07-02")):
        await client.post(
            f"/referrals/{referral['id']}/events", json={"type": step, "on": on}, headers=fran
        )
    await client.post(
        "/referrals", json=distinct_referral(2, consent_given=False), headers=referrer
    )
    response = await client.get(
        "/reports/quarterly?from=Q1 2026-27&to=Q3 2026-27&format=csv", headers=monitor
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = {r["quarter"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert (rows["Q1 2026-27"]["accepted"], rows["Q1 2026-27"]["contacted"]) == ("1", "1")
    assert rows["Q1 2026-27"]["engaging"] == "0"
    assert rows["Q2 2026-27"]["engaging"] == "1"
    assert (rows["Q3 2026-27"]["returned"], rows["Q3 2026-27"]["referrals"]) == ("1", "1")
    as_json = (
        await client.get("/reports/quarterly?from=Q1 2026-27&to=Q3 2026-27", headers=monitor)
    ).json()
    assert as_json["engagement_rate"]["numerator"] == 1
    assert as_json["engagement_rate"]["denominator"] == 1


async def test_reports_are_for_monitors_and_admins_only(client, sign_in):
    for role in (Role.referrer, Role.facilitator, Role.victim_worker):
        headers = await sign_in(role, f"{role.value}-q")
        for path in ("/reports/quarterly", "/reports/referral-quality", "/analysis/reoffending"):
            assert (await client.get(path, headers=headers)).status_code == 403


async def test_bad_quarters_are_422_and_the_cli_says_so_in_one_line(client, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get("/reports/quarterly?from=Q9 2021-22&to=Q1 2021-22", headers=monitor)
    assert response.status_code == 422
    result = inspire("report", "quarterly", "--from", "Q2 2023-24", "--to", "Q3 2021-22")
    assert result.returncode != 0 and "before" in result.stderr and "Traceback" not in result.stderr
