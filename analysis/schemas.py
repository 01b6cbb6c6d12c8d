"""Bodies of the contract-monitoring reports and the reoffending analysis."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec


@dataclass(frozen=True)
class BeforeAfter:
    window_days: int
    n: int | str
    """Referrals whose whole after-window ends by the data cut-off."""
    incidents_before: int | str
    incidents_after: int | str
    any_before: int | str
    any_after: int | str
    mcnemar_p: float | None
    """Exact McNemar test of 'any incident' before against after (paired)."""
    rate_ratio: float | None = None
    """Incidents after / incidents before (equal windows): under 1 means fewer after.
    None when withheld (a small count) or with no incident before."""
    rate_ratio_ci_low: float | None = None
    rate_ratio_ci_high: float | None = None
    """Exact 95% interval (conditional binomial, as R's poisson.test)."""


class RateOut(msgspec.Struct):
    numerator: int | str
    """Published: '<N' for 1 to N-1 (the suppression threshold), the rate then withheld."""
    denominator: int | str
    rate: float | None
    ci_low: float | None
    ci_high: float | None


class GroupRatesOut(msgspec.Struct):
    group: str
    completion_rate: RateOut
    engagement_rate: RateOut


class QuarterlyOut(msgspec.Struct):
    rows: list[dict[str, Any]]
    completion_rate: RateOut
    engagement_rate: RateOut
    notes: list[str]
    by: str | None = None
    """agency or local_authority: each row then names its group in a column of that name."""
    group_rates: list[GroupRatesOut] = []
    suppression_threshold: int = 0
    """Counts from 1 to this minus one are published as '<threshold'."""


class QualityOut(msgspec.Struct):
    rows: list[dict[str, Any]]
    notes: list[str]
    by: str = "agency"
    suppression_threshold: int = 0


class DroppedOut(msgspec.Struct):
    reason: str
    count: int | str


class PopulationOut(msgspec.Struct):
    """Whom one model was fitted on: how many, how many reoffended, who was left out and why."""

    n: int | str
    events: int | str
    dropped: list[DroppedOut]
    description: str
    """In words: who these people are, and which other figures are on the same people."""


class GroupOut(msgspec.Struct):
    group: str
    n: int | str
    """Published: '<N' for 1 to N-1 (the suppression threshold)."""
    events: int | str
    survival: float | None
    """None when it would reveal a suppressed count (a small group, few events or few
    without one)."""
    ci_low: float | None
    ci_high: float | None
    rmst: float | None
    interpretable: bool = True
    """False for a naive status group whose figures are immortal time by construction
    (everyone reached the status only after the horizon): see the notes."""


class LogRankOut(msgspec.Struct):
    statistic: float
    p: float
    degrees_of_freedom: int


class TermOut(msgspec.Struct):
    name: str
    coef: float
    hazard_ratio: float
    ci_low: float
    ci_high: float
    p: float


class PhTestOut(msgspec.Struct):
    """One term's (or, named GLOBAL, the whole model's) proportional-hazards score test."""

    name: str
    chisq: float
    df: int
    p: float


class CoxOut(msgspec.Struct):
    covariates: list[TermOut]
    concordance: float
    ph_test: list[PhTestOut]
    """On everyone; per term, then GLOBAL."""
    ph_test_transform: str
    """The function of time tested against: "km" (R's default), as cox.zph."""
    reference_levels: dict[str, str]
    n: int | str
    events: int | str
    dropped_missing: int | str
    population: PopulationOut
    standard_errors: str = "model-based"
    """How the intervals and p-values were worked out."""


class LandmarkCoxOut(msgspec.Struct):
    """The landmark comparison as a hazard ratio: a Cox model from the landmark on, of the
    status reached by then, adjusted for the covariates asked for (as 'time_varying')."""

    covariates: list[TermOut]
    """The status at the landmark first, then each covariate (against 'reference_levels')."""
    reference_levels: dict[str, str]
    population: PopulationOut
    standard_errors: str


class LandmarkOut(msgspec.Struct):
    landmark_days: int
    n: int | str
    groups: list[GroupOut]
    logrank: LogRankOut | None
    population: PopulationOut
    follow_up_days: int
    """Survival and RMST cover days landmark to horizon: this many days."""
    conditional: str
    """In words: what the landmark survival and RMST are conditional on."""
    cox: LandmarkCoxOut | None = None
    """The status at the landmark as a hazard ratio (None when it cannot be fitted)."""


class TimeVaryingOut(msgspec.Struct):
    status: str
    covariates: list[TermOut]
    landmark: LandmarkOut | None
    population: PopulationOut | None
    """Whom the time-varying Cox model was fitted on (None when no model was fitted)."""
    standard_errors: str = "model-based"
    """How its intervals and p-values were worked out."""


class BalanceOut(msgspec.Struct):
    """One covariate level's standardised mean difference between the groups."""

    covariate: str
    smd_before: float | None
    smd_after: float | None
    imbalanced_before: bool
    imbalanced_after: bool
    """|SMD| >= 0.1 after weighting: the weighting did not balance this level."""


class NotRecordedOut(msgspec.Struct):
    covariate: str
    count: int | str
    """How many lack it (kept, as 'not recorded')."""


class WeightsOut(msgspec.Struct):
    method: str
    """In words: stabilised, truncated where, and why."""
    lower: float
    upper: float
    truncated_low: int | str
    truncated_high: int | str
    effective_n: float | None
    """Kish's effective sample size (None when it would reveal a small count)."""


class EValueOut(msgspec.Struct):
    estimate: float
    ci_limit: float
    outcome: str
    """"rare" (the HR used as a risk ratio) or "common" (converted first)."""
    risk_ratio: float
    meaning: str


class AdjustedGroupOut(msgspec.Struct):
    group: str
    n: int | str
    events: int | str
    weighted_survival: float | None
    """Weighted Kaplan-Meier share not reoffended over the follow-up from the landmark;
    None when it would reveal a small count."""


class AdjustedOut(msgspec.Struct):
    """The adjusted comparison: inverse probability of treatment weighting (IPTW)."""

    status: str
    landmark_days: int
    follow_up_days: int
    covariates: list[str]
    """The baseline covariates the propensity model uses."""
    not_recorded: list[NotRecordedOut]
    """Per covariate, how many lack it (kept, as 'not recorded': no one is dropped)."""
    population: PopulationOut
    groups: list[AdjustedGroupOut]
    hazard_ratio: TermOut
    """Weighted (adjusted) hazard ratio of the status against its absence."""
    unadjusted_hazard_ratio: TermOut
    """The same people, unweighted: what the weighting changed."""
    standard_errors: str
    weights: WeightsOut
    balance: list[BalanceOut]
    e_value: EValueOut
    can_show: str
    cannot_show: str


class ReoffendingOut(msgspec.Struct):
    horizon_days: int
    as_of: date
    n: int | str
    events: int | str
    excluded: int | str
    group_by: str | None
    groups: list[GroupOut]
    logrank: LogRankOut | None
    population: PopulationOut
    """Whom 'groups' and 'logrank' are on: everyone with follow-up."""
    cox: CoxOut | None
    time_varying: TimeVaryingOut | None
    before_after: BeforeAfter
    notes: list[str]
    suppression_threshold: int = 0
    """Counts from 1 to this minus one are published as '<threshold' (0: none hidden)."""
    latest_extract: date | None = None
    """The day the latest police incident extract was taken (None: none recorded);
    ``as_of`` defaults to it."""
    warnings: list[str] = msgspec.field(default_factory=list)
    """Problems with the figures themselves, such as a data cut-off past the latest
    police extract (its days counted as offence-free)."""
    adjusted: AdjustedOut | None = None
    """By programme status: the comparison adjusted for measured baseline covariates
    (IPTW at the landmark). None when not grouped by a status or it cannot be fitted
    (the notes say why)."""
