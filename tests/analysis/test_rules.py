"""What a report or analysis may ask for, on its own: no database, no HTTP."""

from __future__ import annotations

from datetime import date

import pytest

from analysis.rules import (
    BASELINE_GROUPS,
    COVARIATES,
    HORIZON_DAYS,
    MAX_HORIZON_DAYS,
    STATUS_GROUPS,
    AnalysisRequest,
    analysis_request,
    check_request,
    default_range,
    quarter_range,
)
from programme.platform.errors import InvalidInput
from programme.platform.quarters import Quarter

TODAY = date(2026, 11, 27)  # in Q3 2026-27


def q(label: str) -> Quarter:
    return Quarter.parse(label)


def refusal(raised: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str]]:
    return [(error.code, error.field) for error in raised.value.errors]


# ------------------------------------------------------------ quarter ranges


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (None, None, (None, None)),
        ("", "", (None, None)),
        ("Q3 2021-22", None, (q("Q3 2021-22"), None)),
        (None, "Q2 2023-24", (None, q("Q2 2023-24"))),
        ("Q3 2021-22", "Q2 2023-24", (q("Q3 2021-22"), q("Q2 2023-24"))),
        ("Q4 2021-22", "Q4 2021-22", (q("Q4 2021-22"), q("Q4 2021-22"))),
        (" Q1 2022-23 ", "Q1 2022-23", (q("Q1 2022-23"), q("Q1 2022-23"))),
    ],
)
def test_a_range_is_read_from_its_labels(first, last, expected):
    assert quarter_range(first, last) == expected


def test_both_bad_labels_are_reported_at_once():
    with pytest.raises(InvalidInput) as raised:
        quarter_range("Q5 2021-22", "2023 Q2")
    assert refusal(raised) == [("invalid", "from"), ("invalid", "to")]
    messages = [error.message for error in raised.value.errors]
    assert "Q5 2021-22" in messages[0] and "2023 Q2" in messages[1]


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        ("Q3 2021-23", "Q2 2023-24", "from"),
        ("Q3 2021-22", "Q2 2023", "to"),
        (None, "quarter two", "to"),
    ],
)
def test_one_bad_label_is_reported_against_its_field(first, last, field):
    with pytest.raises(InvalidInput) as raised:
        quarter_range(first, last)
    assert refusal(raised) == [("invalid", field)]


def test_a_range_that_ends_before_it_starts_is_refused():
    with pytest.raises(InvalidInput) as raised:
        quarter_range("Q1 2022-23", "Q4 2021-22")
    assert refusal(raised) == [("invalid", "to")]
    assert raised.value.errors[0].message == "Comes before 'from'."


@pytest.mark.parametrize(
    ("first", "last", "today", "expected"),
    [
        # By default, the last four quarters up to the current one.
        (None, None, TODAY, ("Q4 2025-26", "Q3 2026-27")),
        (None, None, date(2026, 4, 1), ("Q2 2025-26", "Q1 2026-27")),
        (None, None, date(2026, 3, 31), ("Q1 2025-26", "Q4 2025-26")),
        (None, "Q2 2023-24", TODAY, ("Q3 2022-23", "Q2 2023-24")),
        ("Q3 2021-22", None, TODAY, ("Q3 2021-22", "Q3 2026-27")),
        ("Q3 2026-27", None, TODAY, ("Q3 2026-27", "Q3 2026-27")),
        ("Q3 2021-22", "Q2 2023-24", TODAY, ("Q3 2021-22", "Q2 2023-24")),
    ],
)
def test_the_default_range(first, last, today, expected):
    assert default_range(first, last, today) == (q(expected[0]), q(expected[1]))


def test_a_start_after_the_current_quarter_is_refused_without_an_end():
    with pytest.raises(InvalidInput) as raised:
        default_range("Q4 2026-27", None, TODAY)
    assert refusal(raised) == [("invalid", "from")]


def test_the_default_range_reports_bad_labels_too():
    with pytest.raises(InvalidInput) as raised:
        default_range("Q9 2021-22", "soon", TODAY)
    assert refusal(raised) == [("invalid", "from"), ("invalid", "to")]


# ---------------------------------------------------------- analysis requests


def test_the_defaults_are_a_good_request():
    request = AnalysisRequest()
    assert (request.horizon_days, request.as_of, request.group_by) == (182, None, None)
    assert HORIZON_DAYS == 182
    assert check_request(request, TODAY) == []


@pytest.mark.parametrize(
    ("horizon_days", "good"), [(0, False), (1, True), (MAX_HORIZON_DAYS, True),
                               (MAX_HORIZON_DAYS + 1, False), (-182, False)]
)  # fmt: skip
def test_the_follow_up_is_between_a_day_and_ten_years(horizon_days, good):
    problems = check_request(AnalysisRequest(horizon_days=horizon_days), TODAY)
    assert [field for field, _ in problems] == ([] if good else ["horizon_days"])


@pytest.mark.parametrize(
    ("as_of", "good"), [(TODAY, True), (date(2020, 1, 1), True), (date(2026, 11, 28), False)]
)
def test_the_data_cut_off_cannot_be_in_the_future(as_of, good):
    problems = check_request(AnalysisRequest(as_of=as_of), TODAY)
    assert [field for field, _ in problems] == ([] if good else ["as_of"])


@pytest.mark.parametrize("group_by", [*BASELINE_GROUPS, *STATUS_GROUPS])
def test_each_grouping_is_allowed(group_by):
    assert check_request(AnalysisRequest(group_by=group_by), TODAY) == []


@pytest.mark.parametrize("group_by", ["star_sign", "first_name", "phone", "Gender"])
def test_other_groupings_are_refused(group_by):
    problems = check_request(AnalysisRequest(group_by=group_by), TODAY)
    assert [field for field, _ in problems] == ["group_by"]
    assert "risk_level" in problems[0][1]


def test_the_groupings_and_covariates_are_the_baseline_details():
    assert set(BASELINE_GROUPS) == {
        "risk_level", "gender", "substance_misuse", "mental_health", "children_in_household",
        "local_authority", "agency",
    }  # fmt: skip
    assert STATUS_GROUPS == ("engaged", "completed")
    assert set(COVARIATES) == {
        "age_at_referral", "gender", "risk_level", "prior_incidents", "substance_misuse",
        "mental_health", "children_in_household",
    }  # fmt: skip


def test_each_unknown_covariate_is_named():
    request = AnalysisRequest(covariates=("gender", "shoe_size", "risk_level", "star_sign"))
    problems = check_request(request, TODAY)
    assert [field for field, _ in problems] == ["covariates", "covariates"]
    assert "'shoe_size'" in problems[0][1] and "'star_sign'" in problems[1][1]
    assert check_request(AnalysisRequest(covariates=COVARIATES), TODAY) == []


@pytest.mark.parametrize(
    ("landmark_days", "good"),
    [(None, True), (1, True), (HORIZON_DAYS - 1, True), (0, False), (HORIZON_DAYS, False),
     (HORIZON_DAYS + 1, False), (-5, False)],
)  # fmt: skip
def test_the_landmark_falls_inside_the_follow_up(landmark_days, good):
    problems = check_request(AnalysisRequest(landmark_days=landmark_days), TODAY)
    assert [field for field, _ in problems] == ([] if good else ["landmark_days"])


def test_every_problem_with_a_request_is_reported():
    request = AnalysisRequest(
        horizon_days=0,
        as_of=date(2027, 1, 1),
        group_by="star_sign",
        covariates=("shoe_size",),
        landmark_days=10,
    )
    assert [field for field, _ in check_request(request, TODAY)] == [
        "horizon_days", "as_of", "group_by", "covariates", "landmark_days",
    ]  # fmt: skip


def test_a_request_is_read_from_its_query_string_form():
    request = analysis_request(
        horizon_days=365,
        as_of=date(2026, 6, 1),
        group_by="engaged",
        covariates=" gender, risk_level,, ",
        landmark_days=30,
        today=TODAY,
    )
    assert request == AnalysisRequest(
        horizon_days=365,
        as_of=date(2026, 6, 1),
        group_by="engaged",
        covariates=("gender", "risk_level"),
        landmark_days=30,
    )


def test_empty_options_mean_none():
    request = analysis_request(HORIZON_DAYS, None, "", "", None, TODAY)
    assert request == AnalysisRequest()


def test_a_bad_request_is_refused_with_every_problem():
    with pytest.raises(InvalidInput) as raised:
        analysis_request(0, None, "star_sign", "gender,shoe_size", None, TODAY)
    assert refusal(raised) == [
        ("invalid", "horizon_days"), ("invalid", "group_by"), ("invalid", "covariates"),
    ]  # fmt: skip
