"""The reoffending analysis end to end: cohort, follow-up, groups, models, plots."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from programme.platform.tables import Role
from tests.builders import csv_text, distinct_referral, inspire, spell

pytestmark = pytest.mark.anyio

AS_OF = "2026-06-01"
START = date(2025, 1, 6)


def cohort_files(tmp_path: Path) -> tuple[Path, Path, dict[str, int]]:
    """60 referrals in early 2025 (every other one engaged), incidents, and what to expect.

    Everyone has more than 182 days of follow-up by AS_OF, so nobody is censored
    before the horizon and the share not reoffended is exactly 1 - events / n.
    """
    referrals, incidents = [], []
    expected = {"engaged_events": 0, "not_engaged_events": 0}
    for n in range(60):
        received = START + timedelta(days=n)
        engaged = n % 2 == 0
        referrals.append(
            {
                "agency": "South Yorkshire Police",
                "reference": f"AN-{n:03d}",
                "received_on": received.isoformat(),
                "first_name": "Cohort" + spell(n, 3),
                "last_name": "Member",
                "date_of_birth": date(1975 + n % 25, 1 + n % 12, 2).isoformat(),
                "gender": ("male", "female")[n % 5 == 0],
                "phone": f"0114 496 0{n:03d}",
                "local_authority": "Sheffield",
                "relationship": "partner",
                "risk_level": ("standard", "medium", "high")[n % 3],
                "prior_incidents": str(n % 4),
                "on_probation_programme": "no",
                "consent_given": "yes",
                "consent_obtained_on": received.isoformat(),
                "consent_method": "written",
                "contacted_on": (received + timedelta(days=7)).isoformat() if engaged else "",
                "engaged_on": (received + timedelta(days=14)).isoformat() if engaged else "",
            }
        )
        reference = f"AN-{n:03d}"
        if n % 3 == 0:  # reoffends within the horizon
            offset = 40 + n if engaged else 20 + n
            incidents.append((reference, received + timedelta(days=offset)))
            expected["engaged_events" if engaged else "not_engaged_events"] += 1
        if n % 7 == 1:  # before the referral: prior history only
            incidents.append((reference, received - timedelta(days=30)))
        if n % 11 == 2:  # on the day of referral: not "after" it
            incidents.append((reference, received))
        if n % 13 == 5:  # after the 182-day horizon: censored
            incidents.append((reference, received + timedelta(days=250)))
    referral_file, incident_file = tmp_path / "referrals.csv", tmp_path / "incidents.csv"
    referral_file.write_text(csv_text(referrals))
    incident_file.write_text(
        "reference,offence_date\n" + "".join(f"{r},{d.isoformat()}\n" for r, d in incidents)
    )
    return referral_file, incident_file, expected


@pytest.fixture
async def cohort(tmp_path, clean_database):
    referral_file, incident_file, expected = cohort_files(tmp_path)
    assert inspire("import", "referrals", str(referral_file), "--create-agencies").returncode == 0
    result = inspire("import", "reoffending", str(incident_file))
    assert result.returncode == 0, result.stderr
    return expected


async def test_groups_by_engagement_with_naive_and_bias_aware_results(client, cohort, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending", params={"as_of": AS_OF, "group_by": "engaged"}, headers=monitor
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["n"], body["excluded"], body["horizon_days"]) == (60, 0, 182)
    events = cohort["engaged_events"] + cohort["not_engaged_events"]
    assert body["events"] == events
    groups = {g["group"]: g for g in body["groups"]}
    assert groups["engaged"]["n"] == groups["not engaged"]["n"] == 30
    assert groups["engaged"]["events"] == cohort["engaged_events"]
    assert groups["engaged"]["survival"] == pytest.approx(1 - cohort["engaged_events"] / 30)
    assert groups["not engaged"]["survival"] == pytest.approx(1 - cohort["not_engaged_events"] / 30)
    assert (
        groups["engaged"]["ci_low"] < groups["engaged"]["survival"] < groups["engaged"]["ci_high"]
    )
    assert 0 < groups["engaged"]["rmst"] <= 182
    assert body["logrank"]["degrees_of_freedom"] == 1
    assert [t["name"] for t in body["cox"]["covariates"]] == ["engaged=engaged"]
    assert body["cox"]["reference_levels"] == {"engaged": "not engaged"}
    assert [t["name"] for t in body["time_varying"]["covariates"]] == ["engaged"]
    assert body["time_varying"]["landmark"]["landmark_days"] == 91
    notes = " ".join(body["notes"])
    assert "NAIVE" in notes and "IMMORTAL-TIME CORRECTED" in notes and "self-selected" in notes


async def test_incidents_before_and_after_referral_are_counted_with_a_caution(
    client, cohort, sign_in
):
    monitor = await sign_in(Role.monitor, "mo")
    body = (
        await client.get("/analysis/reoffending", params={"as_of": AS_OF}, headers=monitor)
    ).json()
    crude = body["before_after"]
    # Everyone's 182-day after-window has ended by AS_OF. Incidents 30 days before
    # (n % 7 == 1) count before; on the referral day (n % 11 == 2) count nowhere;
    # 250 days after (n % 13 == 5) fall outside the window.
    before = sum(1 for n in range(60) if n % 7 == 1)
    after = sum(1 for n in range(60) if n % 3 == 0)
    assert (crude["n"], crude["window_days"]) == (60, 182)
    assert (crude["incidents_before"], crude["incidents_after"]) == (before, after)
    assert (crude["any_before"], crude["any_after"]) == (before, after)
    both = sum(1 for n in range(60) if n % 7 == 1 and n % 3 == 0)
    stopped, started = before - both, after - both
    from scipy.stats import binomtest

    assert crude["mcnemar_p"] == pytest.approx(binomtest(stopped, stopped + started).pvalue)
    assert any("regression to the mean" in note for note in body["notes"])


async def test_covariates_are_dummy_coded_against_stated_references(client, cohort, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending",
        params={"as_of": AS_OF, "covariates": "age_at_referral,risk_level,prior_incidents"},
        headers=monitor,
    )
    assert response.status_code == 200, response.text
    cox = response.json()["cox"]
    assert [t["name"] for t in cox["covariates"]] == [
        "age_at_referral",
        "risk_level=high",
        "risk_level=medium",
        "prior_incidents",
    ]
    assert cox["reference_levels"] == {"risk_level": "standard"}
    # The PH check tests each variable as one term (risk_level's two dummies together),
    # then the model as a whole.
    assert [(p["name"], p["df"]) for p in cox["ph_test"]] == [
        ("age_at_referral", 1),
        ("risk_level", 2),
        ("prior_incidents", 1),
        ("GLOBAL", 4),
    ]
    assert cox["ph_test_transform"] == "km"
    assert 0 <= cox["concordance"] <= 1


async def test_follow_up_stops_at_the_cut_off_and_later_referrals_are_excluded(
    client, cohort, sign_in
):
    monitor = await sign_in(Role.monitor, "mo")
    early = await client.get(
        "/analysis/reoffending", params={"as_of": "2025-02-01"}, headers=monitor
    )
    body = early.json()
    # Received 6 Jan to 31 Jan 2025 have follow-up; 1 Feb onwards do not.
    assert (body["n"], body["excluded"]) == (26, 34)
    events = sum(
        1
        for n in range(26)
        if n % 3 == 0 and (20 + n if n % 2 else 40 + n) <= (date(2025, 2, 1) - START).days - n
    )
    # Published as counts are everywhere: under INSPIRE_SUPPRESS_BELOW (5) as '<5'.
    assert body["events"] == ("<5" if 0 < events < 5 else events)


async def test_too_few_events_for_the_asked_model_is_422(client, cohort, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending",
        params={"as_of": "2025-01-20", "covariates": "age_at_referral,gender,risk_level"},
        headers=monitor,
    )
    assert response.status_code == 422
    assert "too few reoffences" in response.json()["errors"][0]["message"]


async def test_bad_parameters_list_every_problem(client, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending",
        params={
            "group_by": "star_sign",
            "covariates": "age_at_referral,shoe_size",
            "as_of": "2099-01-01",
        },
        headers=monitor,
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"group_by", "covariates", "as_of"}


async def test_no_referrals_is_a_clear_422_not_a_500(client, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get("/analysis/reoffending", headers=monitor)
    assert response.status_code == 422
    assert "follow-up" in response.json()["errors"][0]["message"]


async def test_plots_come_as_png_and_svg(client, cohort, sign_in):
    monitor = await sign_in(Role.monitor, "mo")
    png = await client.get(
        "/analysis/reoffending/plot.png",
        params={"as_of": AS_OF, "group_by": "engaged"},
        headers=monitor,
    )
    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    svg = await client.get(
        "/analysis/reoffending/plot.svg", params={"as_of": AS_OF}, headers=monitor
    )
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    assert b"Still followed" in svg.content


async def test_the_cli_writes_json_only_and_the_plot(tmp_path, cohort):
    plot = tmp_path / "km.png"
    result = inspire(
        "analyse",
        "reoffending",
        "--as-of",
        AS_OF,
        "--group-by",
        "engaged",
        "--format",
        "json",
        "--plot",
        str(plot),
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["n"] == 60
    assert plot.read_bytes().startswith(b"\x89PNG")
    bad = inspire("analyse", "reoffending", "--group-by", "star_sign")
    assert bad.returncode != 0 and "group_by" in bad.stderr and "Traceback" not in bad.stderr


async def test_referral_quality_by_agency_and_quarter(client, sign_in):
    police = await sign_in(Role.referrer, "rita", agency="South Yorkshire Police")
    health = await sign_in(Role.referrer, "hana", agency="Rotherham Health")
    monitor = await sign_in(Role.monitor, "mo")
    await client.post("/referrals", json=distinct_referral(1), headers=police)
    await client.post("/referrals", json=distinct_referral(2, notes=None), headers=police)
    await client.post("/referrals", json=distinct_referral(3, consent_given=False), headers=health)
    await client.post(
        "/referrals", json=distinct_referral(4, consent_given=False, phone="1"), headers=health
    )
    response = await client.get(
        "/reports/referral-quality?from=Q3 2026-27&to=Q3 2026-27", headers=monitor
    )
    assert response.status_code == 200, response.text
    # Published, every count here is under 5; what is counted is read from the service.
    published = {r["agency"]: r for r in response.json()["rows"]}
    assert published["South Yorkshire Police"]["received"] == "<5"
    from analysis.services import referral_quality
    from programme.platform.quarters import Quarter

    quarter = Quarter.parse("Q3 2026-27")
    rows = {r["agency"]: r for r in await referral_quality(quarter, quarter)}
    police_row, health_row = rows["South Yorkshire Police"], rows["Rotherham Health"]
    assert (police_row["received"], police_row["accepted"], police_row["returned"]) == (2, 2, 0)
    assert police_row["mean_quality_score"] == 70.0
    assert published["South Yorkshire Police"]["mean_quality_score"] == 70.0
    assert (health_row["received"], health_row["returned"]) == (2, 2)
    assert health_row["reasons"]["consent_missing"] == 2
    assert health_row["reasons"]["no_contact_number"] == 1
    assert health_row["share_engaged"] is None
    as_csv = await client.get(
        "/reports/referral-quality?from=Q3 2026-27&to=Q3 2026-27&format=csv", headers=monitor
    )
    header = as_csv.text.splitlines()[0]
    assert header.startswith("agency,quarter,received,accepted,returned,consent_missing")
