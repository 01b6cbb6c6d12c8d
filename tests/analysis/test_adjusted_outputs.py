"""The adjusted comparison in the published JSON and the CLI table: every figure with its
population, its limits in words, and no small count."""

from __future__ import annotations

import msgspec
import numpy as np

from analysis.rules import AnalysisRequest
from analysis.services import _analyse, publish
from programme import cli
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort


def run(raw, threshold: int, **options):
    request = AnalysisRequest(**{"horizon_days": 364, "group_by": "engaged", **options})
    return publish(_analyse(raw, 0, NO_BEFORE_AFTER, request, AS_OF), threshold)


def test_the_adjusted_comparison_states_its_population_and_what_it_cannot_show():
    raw = cohort(600, seed=41, missing_risk=0.2, shortest_follow_up=60)
    result = run(raw, 5, landmark_days=120)
    adjusted = result.adjusted
    assert adjusted is not None
    landmark = result.time_varying.landmark
    # The landmark analysis's people, every one (a missing detail drops no one).
    assert adjusted.population.n == landmark.n
    assert adjusted.population.dropped == landmark.population.dropped
    assert sum(g.n for g in adjusted.groups) == adjusted.population.n
    assert [(d.covariate, d.count) for d in adjusted.not_recorded] == [
        ("risk_level", int(raw.loc[raw.index.isin(_followed(raw, 120)), "risk_level"].isna().sum()))
    ]
    assert "risk_level=not recorded" in {b.covariate for b in adjusted.balance}
    assert "measured" in adjusted.cannot_show and "E-value" in adjusted.cannot_show
    assert "at least" in adjusted.e_value.meaning
    assert adjusted.standard_errors.startswith("robust (sandwich), clustered on the person")
    assert any(note.startswith("ADJUSTED (IPTW)") for note in result.notes)
    # Through JSON and back, as the API and `--format json` publish it.
    body = msgspec.json.decode(msgspec.json.encode(result))
    assert body["adjusted"]["hazard_ratio"]["name"] == "engaged"
    assert {"smd_before", "smd_after", "imbalanced_after"} <= set(body["adjusted"]["balance"][0])


def _followed(raw, landmark):
    from analysis.services import follow_up

    frame = follow_up(raw, 364)
    return frame.index[frame["duration"] > landmark]


def test_small_counts_are_withheld_and_estimates_that_would_reveal_them():
    raw = cohort(600, seed=41, missing_risk=0.01, shortest_follow_up=60)
    result = run(raw, 5, landmark_days=120)
    adjusted = result.adjusted
    assert any(d.count == "<5" for d in adjusted.not_recorded)  # about 1% lack risk level
    # So few that one group has almost none of them: a level that rare would predict the
    # status almost perfectly, so it is left out of the propensity model, and said so.
    assert any(
        "too rare in one group" in n and "risk_level=not recorded" in n for n in result.notes
    )
    assert "risk_level=not recorded" in {b.covariate for b in adjusted.balance}
    high = run(raw, 1000, landmark_days=120).adjusted
    assert all(g.n == "<1000" and g.weighted_survival is None for g in high.groups)
    assert high.population.n == "<1000"
    assert high.weights.effective_n is None
    assert (high.weights.truncated_low, high.weights.truncated_high) == ("<1000", "<1000")
    # The hazard ratios reveal no count, and stay.
    assert high.hazard_ratio == adjusted.hazard_ratio


def test_when_it_cannot_be_fitted_a_note_says_why_and_nothing_fails():
    raw = cohort(200, seed=5, engaged_share=0.03)
    result = run(raw, 5, landmark_days=120)
    assert result.adjusted is None
    assert any("No adjusted comparison (IPTW): fewer than 10 people" in n for n in result.notes)
    nobody = cohort(200, seed=5)
    nobody["days_to_reoffence"] = np.nan
    result = run(nobody, 5, landmark_days=120)
    assert result.adjusted is None
    assert any(n.startswith("No adjusted comparison (IPTW)") for n in result.notes)


def test_grouped_by_a_baseline_field_there_is_no_adjusted_comparison():
    assert run(cohort(200), 5, group_by="risk_level").adjusted is None


def test_the_cli_table_shows_the_balance_table_and_the_e_value(capsys):
    adjusted = run(cohort(600, seed=41, shortest_follow_up=60), 5, landmark_days=120).adjusted
    cli._adjusted(adjusted)
    out = capsys.readouterr().out
    assert "adjusted (IPTW) at day 120, next 244 days: n=" in out
    assert "adjusted engaged: HR" in out and "unadjusted, same people engaged: HR" in out
    assert "balance (standardised mean difference" in out
    for b in adjusted.balance:
        assert b.covariate in out
    assert f"E-value: {adjusted.e_value.estimate:.2f}" in out
    assert "cannot show: It adjusts only for the baseline covariates measured here" in out
