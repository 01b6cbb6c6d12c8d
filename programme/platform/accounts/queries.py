"""Every SQL statement of accounts and sign-in written by hand."""

from __future__ import annotations

CREATE_AGENCY = "INSERT INTO agency (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id"

# $1 scopes, $2 usernames, $3 addresses (text[], one entry per record, in lock
# order), $4 now. Creates the records that do not exist yet (empty, forgotten
# from now) and locks all of them, one after another in the order given: every
# sign-in locks address, then username at address, then username, so two
# sign-ins never wait for each other in a circle. The update changes nothing;
# it is there so the row is locked and returned as it stands.
LOCK_THROTTLE = """
INSERT INTO login_throttle AS t (scope, username, address, failures, refused, forget_at)
SELECT k.scope, k.username, k.address, 0, 0, $4::timestamptz
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(scope, username, address, n)
ORDER BY k.n
ON CONFLICT (scope, username, address) DO UPDATE SET failures = t.failures
RETURNING t.scope, t.failures, t.refused, t.last_failure_at, t.delayed_until, t.forget_at
"""

# The records as ``accounts.rules`` decided them, locked by LOCK_THROTTLE in the
# same transaction. $1-$3 as there; $4 failures, $5 refused, $6 last failure,
# $7 delayed until, $8 forget at.
SAVE_THROTTLE = """
UPDATE login_throttle AS t
SET failures = v.failures, refused = v.refused, last_failure_at = v.last_failure_at,
    delayed_until = v.delayed_until, forget_at = v.forget_at
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::int[], $5::int[],
    $6::timestamptz[], $7::timestamptz[], $8::timestamptz[]
) AS v(scope, username, address, failures, refused, last_failure_at, delayed_until, forget_at)
WHERE t.scope = v.scope AND t.username = v.username AND t.address = v.address
"""

# $1 now, $2 at most this many. Records being read by a sign-in right now are
# skipped, never waited for: pruning must not hold up, or deadlock with, a
# sign-in. Each failed sign-in adds at most three rows and prunes up to $2, so
# rows for names tried once (unknown usernames included) do not pile up.
PRUNE_THROTTLE = """
DELETE FROM login_throttle WHERE id IN (
    SELECT id FROM login_throttle WHERE forget_at <= $1
    ORDER BY forget_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
"""
