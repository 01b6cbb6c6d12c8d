"""The reoffending analysis contract monitors ask for: does the programme reduce
reoffending, and how sure can we be?

Grouping by programme status (engaged, completed) from the referral date
flatters the programme: someone had to stay offence-free long enough to
engage or complete (immortal-time bias). That naive comparison is reported,
because it is what councils publish, beside two bias-aware ones: status as a
time-varying covariate in a Cox model, and a landmark analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from analysis import cohort, schemas
from analysis.before_after import before_after
from analysis.survival import AnalysisError, cox, kaplan_meier, logrank, time_varying_cox

STATUS_GROUPS = ("engaged", "completed")
BASELINE_GROUPS = (
    "risk_level",
    "gender",
    "substance_misuse",
    "mental_health",
    "children_in_household",
    "local_authority",
    "agency",
)
COVARIATES = (
    "age_at_referral",
    "gender",
    "risk_level",
    "prior_incidents",
    "substance_misuse",
    "mental_health",
    "children_in_household",
)
REFERENCE_LEVELS = {"gender": "male", "risk_level": "standard"}
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class AnalysisRequest:
    horizon_days: int = 182
    as_of: date | None = None
    group_by: str | None = None
    covariates: tuple[str, ...] = ()
    landmark_days: int | None = None


def check_request(request: AnalysisRequest, today: date) -> list[tuple[str, str]]:
    """Every problem with the parameters, as (field, message)."""
    problems = []
    if not 1 <= request.horizon_days <= 3650:
        problems.append(("horizon_days", "Use a follow-up between 1 and 3650 days."))
    if request.as_of is not None and request.as_of > today:
        problems.append(("as_of", "The data cut-off cannot be in the future."))
    if request.group_by and request.group_by not in (*BASELINE_GROUPS, *STATUS_GROUPS):
        options = ", ".join((*BASELINE_GROUPS, *STATUS_GROUPS))
        problems.append(("group_by", f"Group by one of: {options}."))
    for name in request.covariates:
        if name not in COVARIATES:
            problems.append(("covariates", f"{name!r} is not one of: {', '.join(COVARIATES)}."))
    if request.landmark_days is not None and not 0 < request.landmark_days < request.horizon_days:
        problems.append(("landmark_days", "The landmark must fall inside the follow-up."))
    return problems


def group_labels(frame: pd.DataFrame, group_by: str) -> pd.Series:
    if group_by in STATUS_GROUPS:
        reached = frame[f"days_to_{group_by}"].notna()
        return reached.map({True: group_by, False: f"not {group_by}"})
    values = frame[group_by]
    if values.dtype == bool or set(values.dropna().unique()) <= {True, False}:
        values = values.map({True: "yes", False: "no"})
    return values.fillna(NOT_RECORDED).astype(str)


def _group_survival(frame: pd.DataFrame, labels: pd.Series, horizon: int) -> list[schemas.GroupOut]:
    out = []
    for label in sorted(labels.unique()):
        part = frame[labels == label]
        result = kaplan_meier(part["duration"], part["event"], horizon)
        out.append(
            schemas.GroupOut(
                group=str(label),
                n=result.n,
                events=result.events,
                survival=result.survival,
                ci_low=result.ci_low,
                ci_high=result.ci_high,
                rmst=result.rmst,
            )
        )
    return out


def design_matrix(
    frame: pd.DataFrame, names: tuple[str, ...]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric covariates; categorical ones dummy-coded against a stated reference level."""
    columns: dict[str, pd.Series] = {}
    references: dict[str, str] = {}
    for name in names:
        if name in REFERENCE_LEVELS:
            reference = REFERENCE_LEVELS[name]
            references[name] = reference
            values = frame[name].astype("object")
            for level in sorted(v for v in values.dropna().unique() if v != reference):
                columns[f"{name}={level}"] = (values == level).astype(float).where(values.notna())
        else:
            columns[name] = frame[name].astype(float)
    return pd.DataFrame(columns, index=frame.index), references


def _terms(terms) -> list[schemas.TermOut]:
    return [
        schemas.TermOut(
            name=t.name,
            coef=t.coef,
            hazard_ratio=t.hazard_ratio,
            ci_low=t.ci_low,
            ci_high=t.ci_high,
            p=t.p,
        )
        for t in terms
    ]


def _cox(
    frame: pd.DataFrame, labels: pd.Series | None, request: AnalysisRequest, notes: list[str]
) -> schemas.CoxOut | None:
    matrix, references = design_matrix(frame, request.covariates)
    if labels is not None:
        reference = (
            sorted(labels.unique())[0]
            if request.group_by not in STATUS_GROUPS
            else (f"not {request.group_by}")
        )
        references[request.group_by or "group"] = reference
        for level in sorted(labels.unique()):
            if level != reference:
                matrix[f"{request.group_by}={level}"] = (labels == level).astype(float)
    if matrix.shape[1] == 0:
        return None
    complete = matrix.notna().all(axis=1)
    try:
        model = cox(matrix[complete], frame.loc[complete, "duration"], frame.loc[complete, "event"])
    except AnalysisError as exc:
        if request.covariates:
            raise
        notes.append(f"No Cox model: {exc}.")
        return None
    if model.ph_test_n < model.n:
        notes.append(
            f"The proportional-hazards check used a random sample of {model.ph_test_n:,} of the "
            f"{model.n:,} people (the model refitted to them): the same test with less power, "
            f"because the residuals it needs take time that grows with the square of the rows."
        )
    return schemas.CoxOut(
        covariates=_terms(model.terms),
        concordance=model.concordance,
        ph_test=[schemas.PhTestOut(name=n, p=p) for n, p in model.ph_test],
        ph_test_n=model.ph_test_n,
        reference_levels=references,
        n=model.n,
        events=model.events,
        dropped_missing=int((~complete).sum()),
    )


def intervals(frame: pd.DataFrame, status: str, covariates: pd.DataFrame) -> pd.DataFrame:
    """Split each person's follow-up at the day their status began (counting process form)."""
    start_status = frame[f"days_to_{status}"].to_numpy()
    duration = frame["duration"].to_numpy()
    event = frame["event"].to_numpy()
    ids = np.arange(len(frame))
    before = np.isnan(start_status) | (start_status >= duration)
    from_start = ~before & (start_status <= 0)
    split = ~before & ~from_start
    rows = [
        pd.DataFrame(
            {
                "id": ids[before],
                "start": 0.0,
                "stop": duration[before],
                "event": event[before],
                status: 0.0,
            }
        ),
        pd.DataFrame(
            {
                "id": ids[from_start],
                "start": 0.0,
                "stop": duration[from_start],
                "event": event[from_start],
                status: 1.0,
            }
        ),
        pd.DataFrame(
            {"id": ids[split], "start": 0.0, "stop": start_status[split], "event": 0, status: 0.0}
        ),
        pd.DataFrame(
            {
                "id": ids[split],
                "start": start_status[split],
                "stop": duration[split],
                "event": event[split],
                status: 1.0,
            }
        ),
    ]
    long = pd.concat(rows, ignore_index=True)
    extra = covariates.reset_index(drop=True)
    return long.join(extra, on="id")


def _landmark(frame: pd.DataFrame, status: str, landmark: int, horizon: int) -> schemas.LandmarkOut:
    """Among people still followed and offence-free at the landmark, compare by status then."""
    at_risk = frame[frame["duration"] > landmark]
    reached = at_risk[f"days_to_{status}"] <= landmark
    labels = reached.map({True: status, False: f"not {status}"})
    shifted = at_risk.assign(duration=at_risk["duration"] - landmark)
    groups = _group_survival(shifted, labels, horizon - landmark)
    test = None
    if labels.nunique() > 1:
        result = logrank(shifted["duration"], shifted["event"], labels)
        test = schemas.LogRankOut(result.statistic, result.p, result.degrees_of_freedom)
    return schemas.LandmarkOut(landmark_days=landmark, n=len(at_risk), groups=groups, logrank=test)


def _time_varying(
    frame: pd.DataFrame, request: AnalysisRequest, notes: list[str]
) -> schemas.TimeVaryingOut:
    status = request.group_by or ""
    matrix, _ = design_matrix(frame, request.covariates)
    complete = matrix.notna().all(axis=1)
    data = frame[complete]
    long = intervals(data, status, matrix[complete])
    if not (long[status] == 1).any():
        notes.append(
            f"No one was {status} within the follow-up window, so the programme cannot be "
            f"compared without immortal-time bias on this data: only the naive figures exist, "
            f"and they should not be read as an effect of the programme."
        )
        return schemas.TimeVaryingOut(status=status, covariates=[], landmark=None)
    try:
        terms = _terms(time_varying_cox(long, [status, *matrix.columns]))
    except AnalysisError as exc:
        notes.append(f"No time-varying model: {exc}.")
        terms = []
    landmark = request.landmark_days or min(91, request.horizon_days // 2)
    try:
        landmark_out = _landmark(data, status, landmark, request.horizon_days)
    except AnalysisError as exc:
        notes.append(f"No landmark analysis: {exc}.")
        landmark_out = None
    return schemas.TimeVaryingOut(status=status, covariates=terms, landmark=landmark_out)


async def analyse(request: AnalysisRequest, today: date) -> schemas.ReoffendingOut:
    as_of = request.as_of or today
    raw, excluded = await cohort.load(as_of)
    if raw.empty:
        raise AnalysisError("no referral has any follow-up time by the data cut-off")
    frame = cohort.follow_up(raw, request.horizon_days, as_of)
    notes = [
        f"Time origin: the referral's received date. Event: the first police-recorded "
        f"domestic-abuse incident after it. Follow-up: {request.horizon_days} days or to "
        f"{as_of.isoformat()}, whichever is earlier; {excluded} referrals received on or after "
        f"the cut-off have no follow-up and are excluded.",
        "Survival is the Kaplan-Meier share not reoffended at the horizon (95% CI, log-log); "
        "RMST is the restricted mean offence-free days up to the horizon.",
    ]
    labels = group_labels(frame, request.group_by) if request.group_by else None
    if labels is None:
        groups = _group_survival(frame, pd.Series("all", index=frame.index), request.horizon_days)
    else:
        groups = _group_survival(frame, labels, request.horizon_days)
    test = None
    if labels is not None and labels.nunique() > 1:
        result = logrank(frame["duration"], frame["event"], labels)
        test = schemas.LogRankOut(result.statistic, result.p, result.degrees_of_freedom)
    cox_out = _cox(frame, labels, request, notes)
    time_varying = None
    if request.group_by in STATUS_GROUPS:
        notes.append(
            f"NAIVE: 'groups', 'logrank' and 'cox' compare people by whether they had "
            f"{request.group_by} by the cut-off, counted from the referral date. This is what "
            f"councils publish, and it flatters the programme: people had to stay offence-free "
            f"long enough to be {request.group_by} (immortal-time bias)."
        )
        notes.append(
            f"BIAS-AWARE: 'time_varying' counts people as {request.group_by} only from the day "
            f"they were (a time-varying Cox model), and its landmark analysis compares only "
            f"people still offence-free and followed at the landmark, by their status then."
        )
        time_varying = _time_varying(frame, request, notes)
    crude = await before_after(request.horizon_days, as_of)
    notes.append(
        f"'before_after' counts police-recorded incidents in the {request.horizon_days} days "
        f"before and after each referral whose after-window has ended. Referrals follow an "
        f"incident, so a fall afterwards is expected even without the programme (regression to "
        f"the mean): read it as context, not as the programme's effect."
    )
    return schemas.ReoffendingOut(
        horizon_days=request.horizon_days,
        as_of=as_of,
        n=len(frame),
        events=int(frame["event"].sum()),
        excluded=excluded,
        group_by=request.group_by,
        groups=groups,
        logrank=test,
        cox=cox_out,
        time_varying=time_varying,
        before_after=crude,
        notes=notes,
    )
