"""The corrected models are named for what they fix, and the default picture is theirs."""

from __future__ import annotations

import pytest

from analysis.plots import _draw
from analysis.rules import AnalysisRequest
from analysis.services import _analyse
from programme.platform.tables import Role
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort
from tests.analysis.test_reoffending_analysis import AS_OF as DB_AS_OF
from tests.analysis.test_reoffending_analysis import cohort as db_cohort  # noqa: F401 (fixture)


def text_of(svg: bytes) -> str:
    return svg.decode()


def test_the_notes_name_the_corrected_models_and_what_none_can_show():
    request = AnalysisRequest(horizon_days=364, group_by="engaged", landmark_days=120)
    notes = " ".join(_analyse(cohort(200), 0, NO_BEFORE_AFTER, request, AS_OF).notes)
    assert "IMMORTAL-TIME CORRECTED" in notes
    assert "bias-aware" not in notes.lower() and "unbiased" not in notes.lower()
    assert "self-selected" in notes and "not the programme's effect" in notes


def test_by_programme_status_the_plot_shows_the_landmark_curves_by_default():
    raw = cohort(300, shortest_follow_up=200)
    request = AnalysisRequest(horizon_days=364, group_by="engaged", landmark_days=120)
    default = text_of(_draw(raw, request, AS_OF, "svg", 5))
    assert "immortal-time corrected" in default and "compared from day 120" in default
    assert "engaged by day 120" in default and "NAIVE" not in default
    # Numbers still followed start at the landmark: nobody is counted before it. Not
    # "at risk": that is the programme's list of people missing sessions.
    assert "Still followed" in default and "At risk" not in default
    naive = text_of(_draw(raw, request, AS_OF, "svg", 5, naive=True))
    assert "NAIVE AND BIASED" in naive and "compared from day" not in naive


def test_other_groupings_are_drawn_from_referral_as_before():
    raw = cohort(300)
    request = AnalysisRequest(horizon_days=364, group_by="risk_level")
    svg = text_of(_draw(raw, request, AS_OF, "svg", 5))
    assert "landmark" not in svg and "NAIVE" not in svg


@pytest.mark.anyio
async def test_the_plot_route_draws_the_naive_curves_only_when_asked(
    client,
    db_cohort,  # noqa: F811
    sign_in,
):
    monitor = await sign_in(Role.monitor, "mo")
    params = {"as_of": DB_AS_OF, "group_by": "engaged"}
    default = await client.get("/analysis/reoffending/plot.svg", params=params, headers=monitor)
    assert default.status_code == 200, default.text
    assert b"immortal-time corrected" in default.content
    naive = await client.get(
        "/analysis/reoffending/plot.svg", params={**params, "naive": "true"}, headers=monitor
    )
    assert b"NAIVE AND BIASED" in naive.content
