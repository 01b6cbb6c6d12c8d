"""The audit trail's SQL for writes that go out with other work in one statement."""

from __future__ import annotations

ENTRY_COLUMNS = (
    "occurred_at",
    "account_id",
    "username",
    "role",
    "action",
    "record_type",
    "record_id",
    "detail",
)


def insert_entries(parameter: int) -> str:
    """An INSERT of the audit rows given as one JSON array (``services.entry`` each) in
    ``$parameter``: a statement of its own, or one part of a ``WITH`` query, so a write
    and its audit rows reach the database in one round trip."""
    columns = ", ".join(ENTRY_COLUMNS)
    return f"""INSERT INTO audit_event ({columns}) SELECT {columns}
    FROM jsonb_to_recordset(${parameter}::jsonb) AS e(
        occurred_at timestamptz, account_id uuid, username text, role text, action text,
        record_type text, record_id text, detail jsonb)"""  # noqa: S608 - constants only
