"""Item 7's smaller ones: fixed references, a variable entered once, labels, warnings."""

from __future__ import annotations

from analysis.rules import AnalysisRequest
from analysis.services import _analyse
from tests.analysis.reoffending_frames import AS_OF, NO_BEFORE_AFTER, cohort


def run(raw, **options):
    request = AnalysisRequest(**{"horizon_days": 364, **options})
    return _analyse(raw, 0, NO_BEFORE_AFTER, request, AS_OF)


def test_grouping_compares_against_the_stated_reference_not_the_first_in_the_alphabet():
    raw = cohort(300, seed=5)
    by_risk = run(raw, group_by="risk_level").cox
    assert by_risk.reference_levels == {"risk_level": "standard"}
    assert [t.name for t in by_risk.covariates] == ["risk_level=high", "risk_level=medium"]
    by_gender = run(raw, group_by="gender").cox
    assert by_gender.reference_levels == {"gender": "male"}
    assert [t.name for t in by_gender.covariates] == ["gender=female"]
    # The same reference as when the variable is a covariate: the hazard ratios agree.
    as_covariate = run(raw, covariates=("risk_level",)).cox
    assert [t.hazard_ratio for t in as_covariate.covariates] == [
        t.hazard_ratio for t in by_risk.covariates
    ]


def test_a_group_by_field_also_named_as_a_covariate_is_entered_once():
    raw = cohort(300, seed=6)
    result = run(raw, group_by="substance_misuse", covariates=("substance_misuse", "gender"))
    names = [t.name for t in result.cox.covariates]
    assert names == ["substance_misuse", "gender=female"]


def test_landmark_survival_is_labelled_conditional_and_its_span_stated():
    result = run(cohort(300, seed=7), group_by="engaged", landmark_days=120)
    landmark = result.time_varying.landmark
    assert landmark.follow_up_days == 244
    assert "conditional" in landmark.conditional and "next 244 days" in landmark.conditional


def test_models_with_fewer_than_ten_events_per_term_are_flagged():
    raw = cohort(120, seed=8, hazard=1 / 3000)  # a handful of reoffences
    covariates = ("gender", "risk_level", "prior_incidents")
    result = run(raw, covariates=covariates)
    assert result.cox is not None
    assert any("fewer than 10 reoffences per term (4 terms)" in n for n in result.notes)
    plenty = run(cohort(600, seed=8, hazard=1 / 100), covariates=covariates)
    assert not any("reoffences per term" in n for n in plenty.notes)


def test_a_group_with_no_reoffence_has_no_interval_as_in_r():
    # No reoffence by the horizon: survival 1 with no variance, where a log(-log) interval
    # is undefined. R's survfit gives no interval there (issue 13); lifelines gave [1, 1].
    from analysis.survival import kaplan_meier

    result = kaplan_meier([5, 8, 12], [0, 0, 0], 10)
    assert (result.survival, result.ci_low, result.ci_high) == (1.0, None, None)
    some = kaplan_meier([5, 8, 12], [1, 0, 0], 10)
    assert some.ci_low is not None and some.ci_low < some.survival < 1
