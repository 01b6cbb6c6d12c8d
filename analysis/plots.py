"""Kaplan-Meier curves a non-statistician can read at a glance."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.plotting import add_at_risk_counts
from matplotlib.figure import Figure

from analysis import services
from analysis.rules import AnalysisRequest
from analysis.services import group_labels
from analysis.survival import AnalysisError
from programme.platform.threads import off_loop

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


async def reoffending_plot(request: AnalysisRequest, today: date, fmt: str) -> bytes:
    """Curves per group with 95% bands, the horizon marked, numbers at risk beneath."""
    if fmt not in FORMATS:
        raise AnalysisError("the plot comes as png or svg")
    as_of = request.as_of or today
    raw, _ = await services.load_cohort(as_of)
    if raw.empty:
        raise AnalysisError("no referral has any follow-up time by the data cut-off")
    return await off_loop(_draw, raw, request, as_of, fmt)


def _draw(raw: pd.DataFrame, request: AnalysisRequest, as_of: date, fmt: str) -> bytes:
    # A Figure of its own, not pyplot's shared state: plots are drawn in worker threads.
    frame = services.follow_up(raw, request.horizon_days)
    if request.group_by:
        labels = group_labels(frame, request.group_by)
    else:
        labels = pd.Series("all referrals", index=frame.index)
    figure = Figure(figsize=(9, 6))
    axes = figure.subplots()
    fitters = []
    for label in sorted(labels.unique()):
        part = frame[labels == label]
        fitter = KaplanMeierFitter(label=f"{label} (n={len(part)})")
        fitter.fit(part["duration"], part["event"])
        fitter.plot_survival_function(ax=axes, ci_show=True, linewidth=2)
        fitters.append(fitter)
    horizon = request.horizon_days
    axes.axvline(horizon, linestyle="--", color="grey")
    axes.text(horizon, 0.03, f" {horizon}-day follow-up ", ha="right", color="grey")
    axes.set_xlim(0, horizon * 1.03)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("Days since referral")
    axes.set_ylabel("Share not reoffended")
    title = "Reoffending after referral"
    if request.group_by:
        title += f", by {request.group_by.replace('_', ' ')}"
        if request.group_by in ("engaged", "completed"):
            title += " (naive: flatters the programme, see notes)"
    axes.set_title(f"{title}\nKaplan-Meier with 95% bands; data to {as_of.isoformat()}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    add_at_risk_counts(*fitters, ax=axes, rows_to_show=["At risk"])
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=110)
    return buffer.getvalue()
