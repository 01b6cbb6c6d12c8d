"""The adjusted comparison over HTTP and at the command line, on a cohort in PostgreSQL."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import pytest

from programme.platform.tables import Role
from tests.analysis.test_reoffending_analysis import cohort  # noqa: F401 (fixture)
from tests.builders import csv_text, inspire, spell

pytestmark = pytest.mark.anyio

AS_OF = "2026-06-01"
START = date(2025, 1, 6)


@pytest.fixture
async def selected(tmp_path, clean_database):
    """240 referrals: high-risk people engage less and reoffend more."""
    rng = random.Random(13)
    referrals, incidents = [], []
    for n in range(240):
        received = START + timedelta(days=n)
        risk = rng.choice(("standard", "standard", "medium", "high"))
        engaged = rng.random() < (0.25 if risk == "high" else 0.6)
        referrals.append(
            {
                "agency": "South Yorkshire Police",
                "reference": f"AD-{n:03d}",
                "received_on": received.isoformat(),
                "first_name": "Adjusted" + spell(n, 3),
                "last_name": "Member",
                "date_of_birth": date(1970 + n % 30, 1 + n % 12, 3).isoformat(),
                "gender": ("male", "female")[n % 6 == 0],
                "phone": f"0114 496 1{n:03d}",
                "local_authority": "Sheffield",
                "relationship": "partner",
                "risk_level": risk,
                "prior_incidents": str(rng.randint(0, 4)),
                "on_probation_programme": "no",
                "consent_given": "yes",
                "consent_obtained_on": received.isoformat(),
                "consent_method": "written",
                "contacted_on": (received + timedelta(days=5)).isoformat() if engaged else "",
                "engaged_on": (received + timedelta(days=rng.randint(10, 60))).isoformat()
                if engaged
                else "",
            }
        )
        days = int(rng.expovariate((1 / 150) if risk == "high" else (1 / 400))) + 1
        incidents.append((f"AD-{n:03d}", received + timedelta(days=days)))
    referral_file, incident_file = tmp_path / "referrals.csv", tmp_path / "incidents.csv"
    referral_file.write_text(csv_text(referrals))
    incident_file.write_text(
        "reference,offence_date\n"
        + "".join(f"{r},{d.isoformat()}\n" for r, d in incidents if d.isoformat() <= AS_OF)
    )
    assert inspire("import", "referrals", str(referral_file), "--create-agencies").returncode == 0
    result = inspire("import", "reoffending", str(incident_file))
    assert result.returncode == 0, result.stderr


async def test_the_api_publishes_the_adjusted_comparison(client, selected, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending",
        params={"as_of": AS_OF, "group_by": "engaged", "horizon_days": 364},
        headers=monitor,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    adjusted = body["adjusted"]
    assert adjusted is not None, body["notes"]
    landmark = body["time_varying"]["landmark"]
    assert adjusted["population"]["n"] == landmark["n"]
    assert adjusted["landmark_days"] == landmark["landmark_days"] == 91
    assert {g["group"] for g in adjusted["groups"]} == {"engaged", "not engaged"}
    hr = adjusted["hazard_ratio"]
    assert hr["ci_low"] < hr["hazard_ratio"] < hr["ci_high"]
    assert {b["covariate"] for b in adjusted["balance"]} >= {"risk_level=high", "age_at_referral"}
    assert adjusted["e_value"]["estimate"] >= 1
    assert body["time_varying"]["standard_errors"].startswith("robust (sandwich)")


async def test_grouped_by_a_baseline_field_the_api_gives_none(client, selected, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending",
        params={"as_of": AS_OF, "group_by": "risk_level"},
        headers=monitor,
    )
    assert response.status_code == 200, response.text
    assert response.json()["adjusted"] is None


async def test_the_cli_prints_it_in_the_table_and_the_json(selected):
    args = ("analyse", "reoffending", "--as-of", AS_OF, "--group-by", "engaged")
    table = inspire(*args, "--horizon-days", "364")
    assert table.returncode == 0, table.stderr
    assert "adjusted (IPTW) at day 91, next 273 days: n=" in table.stdout
    assert "E-value:" in table.stdout and "balance (standardised mean difference" in table.stdout
    assert "standard errors: robust (sandwich), clustered on the person: one" in table.stdout
    as_json = inspire(*args, "--horizon-days", "364", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["adjusted"]["status"] == "engaged"


async def test_too_few_to_fit_is_a_note_not_a_failure(client, cohort, sign_in):  # noqa: F811
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending", params={"as_of": AS_OF, "group_by": "engaged"}, headers=monitor
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["adjusted"] is None
    assert any(n.startswith("No adjusted comparison (IPTW)") for n in body["notes"])
