"""The time-varying model's intervals are clustered on the person: repeat referrals of
the same person are one person's evidence, not new people's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.rules import AnalysisRequest
from analysis.services import _analyse
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort


def test_each_person_referred_twice_is_no_more_certain_than_once():
    once = cohort(400, seed=31)
    twice = pd.concat([once, once], ignore_index=True)
    request = AnalysisRequest(
        horizon_days=364, group_by="engaged", covariates=("prior_incidents",), landmark_days=120
    )

    def engaged(raw):
        model = _analyse(raw, 0, NO_BEFORE_AFTER, request, AS_OF).time_varying
        term = next(t for t in model.covariates if t.name == "engaged")
        return model, term, np.log(term.ci_high) - np.log(term.ci_low)

    _, alone, width_once = engaged(once)
    clustered, term, width_people = engaged(twice)
    _, _, width_referrals = engaged(twice.assign(person=[str(i) for i in range(800)]))
    assert clustered.standard_errors.startswith("robust (sandwich), clustered on the person")
    # (Not to the last digit: each pair is a tie, which Efron's approximation weighs.)
    assert term.coef == pytest.approx(alone.coef, rel=0.05, abs=0.01)
    # Counted as 800 people the interval shrinks by about sqrt(2); clustered on the 400
    # people it is as wide as the data really is.
    assert width_people == pytest.approx(width_referrals * np.sqrt(2), rel=0.1)
    assert width_people == pytest.approx(width_once, rel=0.05)
