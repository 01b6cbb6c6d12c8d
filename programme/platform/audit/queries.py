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


RECORD_MANY = f"""
INSERT INTO audit_event ({", ".join(ENTRY_COLUMNS)})
SELECT $1::timestamptz, $2::uuid, $3, $4, $5, $6, record_id, $8::jsonb
FROM unnest($7::text[]) WITH ORDINALITY AS r(record_id, position)
ORDER BY position
"""  # noqa: S608 - constants only; values are bound
"""The same row for each of many records ($7), differing only in the record: a list page's
reads in one statement, its values sent once (not one bound row of eight per record)."""
