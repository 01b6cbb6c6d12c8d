"""Every SQL statement of accounts and sign-in written by hand."""

from __future__ import annotations

CREATE_AGENCY = "INSERT INTO agency (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id"

# $1 username, $2 now, $3 failures allowed, $4 locked until, $5 window start.
COUNT_FAILURE = """
INSERT INTO login_throttle (username, failures, last_failure_at, locked_until)
VALUES ($1, 1, $2, CASE WHEN $3 <= 1 THEN $4::timestamptz END)
ON CONFLICT (username) DO UPDATE SET
    failures = CASE WHEN login_throttle.last_failure_at < $5
                    THEN 1 ELSE login_throttle.failures + 1 END,
    last_failure_at = EXCLUDED.last_failure_at,
    locked_until = CASE
        WHEN login_throttle.last_failure_at >= $5 AND login_throttle.failures + 1 >= $3
        THEN $4::timestamptz END
"""
