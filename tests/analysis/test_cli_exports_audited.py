"""Reports and the reoffending analysis taken at the command line are in the audit trail,
as the same figures taken over HTTP are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from programme.platform.tables import AuditAction, AuditEvent

pytestmark = pytest.mark.anyio

INSPIRE = str(Path(sys.executable).parent / "inspire")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INSPIRE, *args], capture_output=True, text=True, timeout=300, check=False
    )


def inspire(*args: str) -> str:
    done = run(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def exports() -> list[dict]:
    rows = (
        await AuditEvent.select(
            AuditEvent.account_id,
            AuditEvent.username,
            AuditEvent.role,
            AuditEvent.record_type,
            AuditEvent.record_id,
            AuditEvent.detail,
        )
        .where(AuditEvent.action == AuditAction.export.value)
        .order_by(AuditEvent.id)
    )
    for row in rows:
        if isinstance(row["detail"], str):
            row["detail"] = json.loads(row["detail"])
    return rows


def by_the_cli(record_type: str, record_id: str, detail: dict) -> dict:
    return {
        "account_id": None,
        "username": "cli",
        "role": "system",
        "record_type": record_type,
        "record_id": record_id,
        "detail": detail,
    }


async def test_each_report_run_at_the_command_line_is_audited(clean_database):
    quarters = ["--from", "Q3 2025-26", "--to", "Q2 2026-27"]
    inspire("report", "quarterly", *quarters, "--format", "json")
    inspire("report", "referral-quality", *quarters, "--format", "csv")
    inspire("report", "quarterly", "--from", "Q1 2026-27", "--to", "Q1 2026-27")

    assert await exports() == [
        by_the_cli(
            "report", "quarterly", {"from": "Q3 2025-26", "to": "Q2 2026-27", "format": "json"}
        ),
        by_the_cli(
            "report",
            "referral-quality",
            {"from": "Q3 2025-26", "to": "Q2 2026-27", "format": "csv", "by": "agency"},
        ),
        by_the_cli(
            "report", "quarterly", {"from": "Q1 2026-27", "to": "Q1 2026-27", "format": "table"}
        ),
    ]


async def test_the_reoffending_analysis_run_at_the_command_line_is_audited(make_referrals):
    await make_referrals(6, status="contacted")
    inspire("analyse", "reoffending", "--as-of", "2026-11-01", "--format", "json")
    inspire("analyse", "reoffending", "--as-of", "2026-11-01", "--group-by", "risk_level")

    assert await exports() == [
        by_the_cli("analysis", "reoffending", {"group_by": None}),
        by_the_cli("analysis", "reoffending", {"group_by": "risk_level"}),
    ]


async def test_a_report_that_is_refused_is_not_recorded_as_taken(clean_database):
    done = run("report", "quarterly", "--from", "Q2 2026-27", "--to", "Q1 2026-27")
    assert done.returncode != 0
    assert await exports() == []
