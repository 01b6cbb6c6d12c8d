"""Every SQL statement about locked quarters.

Writes and locking meet on one advisory lock per quarter: a write takes it
shared (many writes at once), locking a quarter takes it exclusively. So a
quarter is locked only once the writes already under way in it have
committed, and every write that starts after sees the lock.
"""

from __future__ import annotations

LOCK_KEY = "hashtextextended('locked_quarter:' || label, 0)"


def share_quarters(labels: str) -> str:
    """The shared locks of the quarters ``labels`` (a text[] parameter), in label order:
    a statement of its own, or a part of a write's statement. What the quarters' locks
    guard must be read in a later statement (a statement sees what was committed
    when it began, and the lock may have waited for a quarter being locked)."""
    return f"""
SELECT pg_advisory_xact_lock_shared({LOCK_KEY})
FROM unnest({labels}::text[]) AS q(label) ORDER BY label
"""  # noqa: S608 - constants only


SHARE_QUARTERS = share_quarters("$1")

HOLD_QUARTER = f"SELECT pg_advisory_xact_lock({LOCK_KEY}) FROM (SELECT $1::text AS label) q"  # noqa: S608

LOCKED_AMONG = """
SELECT quarter FROM locked_quarter WHERE quarter = ANY($1::text[]) ORDER BY first_day
"""

MARK_REVISED = """
UPDATE locked_quarter SET revisions = revisions + 1, revised_at = now()
WHERE quarter = ANY($1::text[])
"""

LOCK_QUARTER = """
INSERT INTO locked_quarter (id, quarter, first_day, last_day, locked_at, locked_by,
                            locked_by_username, revisions, revised_at)
VALUES (gen_random_uuid(), $1, $2, $3, now(), $4, $5, 0, NULL)
ON CONFLICT (quarter) DO NOTHING
RETURNING id
"""

LIST_LOCKED = """
SELECT quarter, first_day, locked_at, locked_by_username, revisions, revised_at
FROM locked_quarter ORDER BY first_day
"""

LOCKED_BETWEEN = """
SELECT quarter, revisions > 0 AS revised FROM locked_quarter
WHERE first_day <= $2 AND last_day >= $1
"""
