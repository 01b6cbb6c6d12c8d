"""Every SQL statement of the web pages' base written by hand."""

from __future__ import annotations

# One first-run set-up at a time, whoever starts it (``inspire serve`` or the page):
# a transaction-scoped advisory lock, released at commit or rollback. The number
# is arbitrary and used for nothing else.
LOCK_FIRST_RUN = "SELECT pg_advisory_xact_lock(7152026012)"

ANY_ACCOUNT = "SELECT EXISTS (SELECT 1 FROM account) AS found"

# $1 now: every link not yet used ends, so only the newest printed one works.
END_SETUP_LINKS = "UPDATE setup_token SET expires_at = $1 WHERE used_at IS NULL AND expires_at > $1"

# $1 digest, $2 expires at.
NEW_SETUP_LINK = "INSERT INTO setup_token (token_digest, expires_at) VALUES ($1, $2)"

# $1 digest, $2 now.
USABLE_SETUP_LINK = """
SELECT id FROM setup_token
WHERE token_digest = $1 AND used_at IS NULL AND expires_at > $2
"""

# $1 id, $2 now.
USE_SETUP_LINK = "UPDATE setup_token SET used_at = $2 WHERE id = $1"
