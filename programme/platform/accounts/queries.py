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

# $1 account id. Who a bearer token or browser session belongs to, with what decides
# whether it still may: active, its token generation, a reset waiting for a new password.
PRINCIPAL = """
SELECT a.id, a.username, a.role, a.password_hash, a.token_generation,
       a.must_change_password, g.id AS agency_id, g.name AS agency_name
FROM account a LEFT JOIN agency g ON g.id = a.agency
WHERE a.id = $1 AND a.active
"""

# $1 jti.
JTI_REVOKED = "SELECT EXISTS (SELECT 1 FROM revoked_token WHERE jti = $1) AS revoked"

# $1 jti, $2 when the token expires anyway.
REVOKE_JTI = """
INSERT INTO revoked_token (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING
"""

# $1 now: a revoked token past its expiry is refused by its signature check anyway.
PRUNE_REVOKED = "DELETE FROM revoked_token WHERE expires_at <= $1"

# Every active admin's account, locked: two admins removing each other at once
# must not leave nobody who can add accounts.
LOCK_ACTIVE_ADMINS = """
SELECT id FROM account WHERE role = 'admin' AND active ORDER BY id FOR UPDATE
"""

# $1 account id. Locked for the change that follows.
LOCK_ACCOUNT = """
SELECT id, username, role, active FROM account WHERE id = $1 FOR UPDATE
"""

# $1 account id, $2 active. A deactivation or reactivation also ends every token and
# browser session issued before it: reactivating must not bring back a leaver's
# old sessions.
SET_ACTIVE = """
UPDATE account SET active = $2, token_generation = token_generation + 1 WHERE id = $1
"""

# $1 account id, $2 role, $3 agency id (or NULL).
SET_ROLE = """
UPDATE account SET role = $2, agency = $3, token_generation = token_generation + 1
WHERE id = $1
"""

# $1 account id, $2 the temporary password's hash.
RESET_HASH = """
UPDATE account SET password_hash = $2, must_change_password = true,
       token_generation = token_generation + 1
WHERE id = $1
"""

# $1 account id, $2 the new hash chosen by its owner.
SET_OWN_HASH = """
UPDATE account SET password_hash = $2, must_change_password = false WHERE id = $1
"""

# $1 username, $2 now. The username's delay, if it has one now (see ``accounts.rules``).
USERNAME_DELAY = """
SELECT max(delayed_until) AS delayed_until, coalesce(sum(failures), 0) AS failures
FROM login_throttle
WHERE scope = 'username' AND username = $1 AND forget_at > $2
"""

# $1 username. Forgets the username's failures, everywhere: the admin has checked
# with its owner. Address records are kept: a guessing address stays delayed.
UNLOCK_USERNAME = """
DELETE FROM login_throttle WHERE username = $1 AND scope IN ('username', 'username_at_address')
"""
