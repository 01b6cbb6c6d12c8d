"""What victims/survivors report, in aggregate: the progress report's 91% figure."""

from __future__ import annotations

from datetime import date

from analysis.proportions import is_small, suppressed, wilson
from analysis.quarters import Quarter, quarter_sql
from outcomes import schemas
from outcomes.tables import Feedback, Stage

IMPROVED = ("stopped", "reduced")


async def victim_feedback_report(
    first: Quarter | None, last: Quarter | None, threshold: int
) -> schemas.FeedbackReport:
    """Per quarter (of collection) and stage: responses, and the share saying the abuse
    stopped or reduced, with a 95% Wilson interval. Counts of 1 to threshold-1 are
    published as '<threshold', and a share is withheld whenever it would reveal one."""
    start = first.first_day if first else date.min
    end = last.last_day if last else date.max
    rows = await Feedback.raw(
        f"""
        SELECT {quarter_sql("collected_on")} AS quarter, stage,
               min(collected_on) AS first_day,
               count(*) AS responded,
               count(*) FILTER (WHERE behaviour IN ('stopped', 'reduced')) AS improved
        FROM feedback
        WHERE collected_on BETWEEN {{}} AND {{}}
        GROUP BY 1, 2
        """,  # noqa: S608 - the f-string only inserts a fixed SQL expression, values are bound
        start,
        end,
    )
    stage_order = {stage.value: i for i, stage in enumerate(Stage)}
    rows.sort(key=lambda r: (r["first_day"], stage_order[r["stage"]]))
    cells = [
        _cell(r["quarter"], r["stage"], r["responded"], r["improved"], threshold) for r in rows
    ]
    total = sum(r["responded"] for r in rows)
    improved = sum(r["improved"] for r in rows)
    overall = _cell("all", "all", total, improved, threshold)
    return schemas.FeedbackReport(
        rows=cells,
        total_responded=overall.responded,
        total_stopped_or_reduced=overall.stopped_or_reduced,
        total_share=overall.share,
        total_ci_low=overall.ci_low,
        total_ci_high=overall.ci_high,
        suppression_threshold=threshold,
        notes=[
            "Share = stopped or reduced / responded, per quarter the feedback was collected in.",
            f"Counts from 1 to {threshold - 1} are shown as '<{threshold}'; a share that "
            "would reveal such a count is withheld.",
            "Intervals are 95% Wilson score intervals.",
        ],
    )


def _cell(quarter: str, stage: str, responded: int, improved: int, threshold: int):
    hidden = any(is_small(n, threshold) for n in (responded, improved, responded - improved))
    share = None if hidden or responded == 0 else wilson(improved, responded)
    return schemas.FeedbackCell(
        quarter=quarter,
        stage=stage,
        responded=suppressed(responded, threshold),
        stopped_or_reduced=suppressed(improved, threshold),
        share=None if share is None else share.share,
        ci_low=None if share is None else share.ci_low,
        ci_high=None if share is None else share.ci_high,
    )
