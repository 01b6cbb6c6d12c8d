"""Defaults that can work: the landmark the status needs, and refusals in plain words."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.rules import AnalysisRequest, resolve_landmark
from analysis.services import _analyse
from programme.platform.errors import InvalidInput
from programme.platform.tables import Role
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort
from tests.analysis.test_reoffending_analysis import AS_OF as DB_AS_OF
from tests.analysis.test_reoffending_analysis import cohort as db_cohort  # noqa: F401 (fixture)


def test_completion_lands_at_the_programme_length_from_its_settings():
    request = AnalysisRequest(horizon_days=364, group_by="completed")
    assert resolve_landmark(request, 26).landmark_days == 182
    assert resolve_landmark(request, 20).landmark_days == 140
    engaged = AnalysisRequest(horizon_days=364, group_by="engaged")
    assert resolve_landmark(engaged, 26).landmark_days == 91
    asked = AnalysisRequest(horizon_days=364, group_by="completed", landmark_days=200)
    assert resolve_landmark(asked, 26).landmark_days == 200
    baseline = AnalysisRequest(horizon_days=364, group_by="risk_level")
    assert resolve_landmark(baseline, 26) == baseline


def test_a_follow_up_that_does_not_pass_the_landmark_is_refused_naming_both_fields():
    with pytest.raises(InvalidInput) as refused:
        resolve_landmark(AnalysisRequest(horizon_days=182, group_by="completed"), 26)
    errors = {e.field: e.message for e in refused.value.errors}
    assert set(errors) == {"horizon_days", "landmark_days"}
    assert "26 weeks" in errors["horizon_days"] and "day 182" in errors["horizon_days"]


def completions_after(days: int):
    raw = cohort(200, seed=3)
    completed = np.random.default_rng(3).random(200) < 0.3
    raw["days_to_completed"] = np.where(completed, days, np.nan)
    return raw


def test_naive_completed_figures_past_every_completion_are_marked_not_interpretable():
    request = AnalysisRequest(horizon_days=182, group_by="completed", landmark_days=100)
    result = _analyse(completions_after(190), 0, NO_BEFORE_AFTER, request, AS_OF)
    assert [g.interpretable for g in result.groups] == [False, False]
    assert any(note.startswith("NOT INTERPRETABLE") for note in result.notes)
    # Nobody completed within the follow-up: no corrected comparison, and the notes say so.
    assert result.time_varying.landmark is None
    assert any("No one was completed within the follow-up" in note for note in result.notes)


def test_a_landmark_with_one_group_says_there_is_no_comparison():
    # Everyone engages between day 10 and 120: nobody has engaged by day 5.
    request = AnalysisRequest(horizon_days=364, group_by="engaged", landmark_days=5)
    result = _analyse(cohort(200), 0, NO_BEFORE_AFTER, request, AS_OF)
    assert result.time_varying.landmark.logrank is None
    assert any(
        "No landmark comparison" in note and "no one was engaged" in note for note in result.notes
    )


def test_naive_figures_with_completions_inside_the_follow_up_stay_interpretable():
    request = AnalysisRequest(horizon_days=364, group_by="completed", landmark_days=182)
    result = _analyse(completions_after(170), 0, NO_BEFORE_AFTER, request, AS_OF)
    assert all(g.interpretable for g in result.groups)
    assert not any("NOT INTERPRETABLE" in note for note in result.notes)


@pytest.mark.anyio
async def test_the_api_defaults_and_refuses_by_the_programme_length(
    client,
    db_cohort,  # noqa: F811
    sign_in,
):
    monitor = await sign_in(Role.monitor, "mo")
    params = {"as_of": DB_AS_OF, "group_by": "completed"}
    refused = await client.get("/analysis/reoffending", params=params, headers=monitor)
    assert refused.status_code == 422, refused.text
    assert {e["field"] for e in refused.json()["errors"]} == {"horizon_days", "landmark_days"}
    plot = await client.get("/analysis/reoffending/plot.png", params=params, headers=monitor)
    assert plot.status_code == 422
    longer = await client.get(
        "/analysis/reoffending", params={**params, "horizon_days": 400}, headers=monitor
    )
    assert longer.status_code == 200, longer.text
    assert longer.json()["time_varying"] is not None
    notes = " ".join(longer.json()["notes"])
    assert "No naive comparison: no one was completed" in notes
