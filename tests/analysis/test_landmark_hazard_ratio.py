"""The landmark comparison as a hazard ratio: status at the landmark, adjusted for the
covariates asked for, on whom it says, with small counts suppressed."""

from __future__ import annotations

import numpy as np

from analysis.rules import AnalysisRequest
from analysis.services import _analyse, publish
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort

LANDMARK = 91


def landmark_cox(raw, threshold=5, **options):
    request = AnalysisRequest(
        **{"horizon_days": 364, "group_by": "engaged", "landmark_days": LANDMARK, **options}
    )
    result = publish(_analyse(raw, 0, NO_BEFORE_AFTER, request, AS_OF), threshold)
    assert result.time_varying is not None and result.time_varying.landmark is not None
    return result.time_varying.landmark


def test_it_compares_people_at_the_landmark_by_their_status_then_adjusted_as_asked():
    raw = cohort(400, seed=3, missing_risk=0.2, hazard=1 / 500)
    landmark = landmark_cox(raw, covariates=("risk_level", "prior_incidents"))
    assert landmark.cox is not None
    names = [t.name for t in landmark.cox.covariates]
    assert names[0] == "engaged"
    assert set(names[1:]) == {"risk_level=high", "risk_level=medium", "prior_incidents"}
    assert landmark.cox.reference_levels["engaged"] == f"not engaged by day {LANDMARK}"
    # Followed and offence-free past the landmark, with a risk level recorded.
    still = raw[raw["days_to_reoffence"].isna() | (raw["days_to_reoffence"] > LANDMARK)]
    assert landmark.cox.population.n == int(still["risk_level"].notna().sum())
    (dropped,) = landmark.cox.population.dropped
    assert dropped.count == int(still["risk_level"].isna().sum())
    assert "clustered on the person" in landmark.cox.standard_errors
    # The Kaplan-Meier landmark comparison stays on everyone at the landmark.
    assert landmark.n == len(still)


def test_no_covariate_asked_gives_the_crude_landmark_hazard_ratio():
    landmark = landmark_cox(cohort(300, seed=5, hazard=1 / 400))
    assert landmark.cox is not None
    assert [t.name for t in landmark.cox.covariates] == ["engaged"]
    assert landmark.cox.population.n == landmark.n


def test_with_one_group_at_the_landmark_there_is_no_hazard_ratio():
    raw = cohort(200, seed=6, hazard=1 / 600)
    raw["days_to_engaged"] = np.where(raw["days_to_engaged"].notna(), 150.0, np.nan)
    landmark = landmark_cox(raw)  # everyone engaged got there after the landmark
    assert len(landmark.groups) == 1 and landmark.cox is None


def test_its_small_counts_are_suppressed():
    raw = cohort(200, seed=7, hazard=1 / 400)
    raw.loc[:2, "risk_level"] = None  # three people left out for a missing risk level
    landmark = landmark_cox(raw, covariates=("risk_level",))
    assert landmark.cox is not None
    assert [d.count for d in landmark.cox.population.dropped] == ["<5"]
