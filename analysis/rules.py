"""What a report or analysis request may ask for: pure decisions, no database, no HTTP.

The API and the command line both parse their ranges and analysis options
here, so a request means the same thing whichever way it comes in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from programme.platform.errors import FieldError, InvalidInput
from programme.platform.quarters import Quarter


def quarter_range(first: str | None, last: str | None) -> tuple[Quarter | None, Quarter | None]:
    """Parse 'from' and 'to' quarter labels, reporting both problems at once."""
    problems, parsed = [], []
    for name, label in (("from", first), ("to", last)):
        try:
            parsed.append(Quarter.parse(label) if label else None)
        except ValueError as exc:
            problems.append(FieldError("invalid", name, str(exc)))
            parsed.append(None)
    if not problems and parsed[0] and parsed[1] and parsed[1] < parsed[0]:
        problems.append(FieldError("invalid", "to", "Comes before 'from'."))
    if problems:
        raise InvalidInput(errors=problems)
    return parsed[0], parsed[1]


def default_range(first: str | None, last: str | None, today: date) -> tuple[Quarter, Quarter]:
    """The asked-for quarters; by default the last four up to the current one."""
    start, end = quarter_range(first, last)
    end = end or Quarter.of(today)
    if start is None:
        start = end.previous().previous().previous()
    if end < start:
        # Only 'from' was given, and it lies beyond the current quarter.
        raise InvalidInput(
            errors=[FieldError("invalid", "from", "Comes after the current quarter; give 'to'.")]
        )
    return start, end


def pack_quarter(label: str | None, today: date) -> Quarter:
    """The quarter a quarterly pack is for: a label like 'Q2 2023-24', begun by today."""
    if not label:
        raise InvalidInput(errors=[FieldError("missing", "quarter", "Give a quarter.")])
    try:
        quarter = Quarter.parse(label)
    except ValueError as exc:
        raise InvalidInput(errors=[FieldError("invalid", "quarter", str(exc))]) from None
    if quarter.first_day > today:
        raise InvalidInput(
            errors=[FieldError("invalid", "quarter", f"{quarter.label} has not begun yet.")]
        )
    return quarter


HORIZON_DAYS = 182
"""Six months' follow-up: the programme's own length, and what councils report."""
MAX_HORIZON_DAYS = 3650

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
    horizon_days: int = HORIZON_DAYS
    as_of: date | None = None
    group_by: str | None = None
    covariates: tuple[str, ...] = ()
    landmark_days: int | None = None


LANDMARK_DAYS = 91
"""The landmark for engagement, unless asked: about three months in."""


def landmark_for(request: AnalysisRequest) -> int:
    """The landmark day asked for (or resolved), else 91 days or half a shorter follow-up."""
    return request.landmark_days or min(LANDMARK_DAYS, request.horizon_days // 2)


def resolve_landmark(request: AnalysisRequest, programme_weeks: int) -> AnalysisRequest:
    """The request with the landmark its status needs, or a 422 naming both fields.

    Nobody completes before the programme has run its length, so a landmark earlier than
    that compares everyone with no one: completion's landmark defaults to the programme's
    length (its settings). Engagement's defaults to 91 days. A follow-up that does not
    pass the landmark leaves nothing to compare, so it is refused, not quietly answered.
    """
    if request.group_by not in STATUS_GROUPS:
        return request
    landmark = request.landmark_days
    if landmark is None:
        completed = request.group_by == "completed"
        landmark = programme_weeks * 7 if completed else landmark_for(request)
    if not 0 < landmark < request.horizon_days:
        reason = (
            f"the programme's length ({programme_weeks} weeks), as nobody completes sooner"
            if request.group_by == "completed" and request.landmark_days is None
            else "the landmark"
        )
        raise InvalidInput(
            errors=[
                FieldError(
                    "invalid",
                    "horizon_days",
                    f"The follow-up ({request.horizon_days} days) must run past the landmark "
                    f"(day {landmark}, {reason}) to compare people by {request.group_by}; "
                    f"use more than {landmark} days.",
                ),
                FieldError(
                    "invalid",
                    "landmark_days",
                    f"Day {landmark} does not fall inside the {request.horizon_days}-day "
                    f"follow-up.",
                ),
            ]
        )
    return replace(request, landmark_days=landmark)


def check_request(request: AnalysisRequest, today: date) -> list[tuple[str, str]]:
    """Every problem with the parameters, as (field, message)."""
    problems = []
    if not 1 <= request.horizon_days <= MAX_HORIZON_DAYS:
        problems.append(("horizon_days", f"Use a follow-up between 1 and {MAX_HORIZON_DAYS} days."))
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


def analysis_request(
    horizon_days: int,
    as_of: date | None,
    group_by: str | None,
    covariates: str | None,
    landmark_days: int | None,
    today: date,
) -> AnalysisRequest:
    """The request from its query-string or command-line form, or every problem with it."""
    names = tuple(c.strip() for c in (covariates or "").split(",") if c.strip())
    request = AnalysisRequest(horizon_days, as_of, group_by or None, names, landmark_days)
    problems = check_request(request, today)
    if problems:
        raise InvalidInput(errors=[FieldError("invalid", f, m) for f, m in problems])
    return request


@dataclass(frozen=True)
class CutOff:
    """The data cut-off an analysis uses, and what to tell its reader about it."""

    as_of: date
    latest_extract: date | None
    note: str
    warnings: tuple[str, ...] = ()


def data_cut_off(asked: date | None, latest_extract: date | None, today: date) -> CutOff:
    """The cut-off asked for, else the day the latest police extract was taken.

    Follow-up runs to the cut-off, and a day with no incident in the police data counts
    as offence-free. Past the latest extract there is no police data at all, so those
    days would count as offence-free whatever happened on them: a later cut-off is
    answered (it may be wanted, say to line up with a quarter) but with a warning.
    With no extract recorded (no incident import yet, or only ones from before the
    extract date was kept) the cut-off falls back to today, and says so: refusing would
    stop every analysis on data imported before extracts were recorded.
    """
    if latest_extract is None:
        as_of = asked or today
        warning = (
            f"No police extract date is recorded (import incidents with their extract "
            f"date), so the data cut-off is {as_of.isoformat()}"
            f"{' as asked' if asked else ', today'}: any days after the police data was "
            f"really taken are counted as offence-free, flattering everyone's survival."
        )
        return CutOff(as_of, None, warning, (warning,))
    if asked is None:
        note = (
            f"Data cut-off: {latest_extract.isoformat()}, the day the latest police extract "
            f"was taken; nobody is followed past it."
        )
        return CutOff(latest_extract, latest_extract, note)
    if asked > latest_extract:
        warning = (
            f"The data cut-off ({asked.isoformat()}) is after the latest police extract "
            f"({latest_extract.isoformat()}): the {(asked - latest_extract).days} days "
            f"between have no police data, and are counted as offence-free, flattering "
            f"everyone's survival. Use as_of {latest_extract.isoformat()} or earlier."
        )
        return CutOff(asked, latest_extract, warning, (warning,))
    note = (
        f"Data cut-off: {asked.isoformat()} as asked (the latest police extract was taken "
        f"on {latest_extract.isoformat()})."
    )
    return CutOff(asked, latest_extract, note)
