"""Every SQL statement relaygate runs, each under a name. Code calls these; it writes no SQL.

Grouped by resource. Parameters are positional (``$1``...) and documented where not obvious.
"""

from __future__ import annotations

# --- accounts ---------------------------------------------------------------------------------

ACCOUNT_INSERT = """
INSERT INTO accounts (id, name, relay_mode, default_region, subscription_expires_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING *
"""
ACCOUNT_BY_ID = "SELECT * FROM accounts WHERE id = $1"
ACCOUNT_COUNT = "SELECT count(*) FROM accounts"
ACCOUNT_SET_EXPIRY = "UPDATE accounts SET subscription_expires_at = $2 WHERE id = $1 RETURNING *"

# --- access tokens ----------------------------------------------------------------------------

TOKEN_INSERT = """
INSERT INTO access_tokens (id, account_id, name, token_hash, hint, scopes)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, account_id, name, hint, scopes, created_at, last_used_at, revoked_at
"""
# Authenticate and stamp last_used_at in one round trip ($1 = token hash).
TOKEN_AUTHENTICATE = """
WITH t AS (
    UPDATE access_tokens SET last_used_at = now()
    WHERE token_hash = $1 AND revoked_at IS NULL
    RETURNING id, account_id, scopes
)
SELECT t.id AS token_id, t.scopes, a.id, a.name, a.relay_mode, a.default_region,
       a.subscription_expires_at, a.status, a.created_at
FROM t JOIN accounts a ON a.id = t.account_id
"""
# $1 account, $2 cursor (last id seen, '' for the first page), $3 limit
TOKEN_LIST = """
SELECT id, account_id, name, hint, scopes, created_at, last_used_at, revoked_at
FROM access_tokens WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3
"""
# $1 token id, $2 account id (NULL from the CLI: any account)
TOKEN_REVOKE = """
UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)
RETURNING id, account_id, name, hint, scopes, created_at, last_used_at, revoked_at
"""

# --- health -----------------------------------------------------------------------------------

PING = "SELECT 1"
