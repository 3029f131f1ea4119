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

# --- pairing ----------------------------------------------------------------------------------

PAIRING_INSERT = """
INSERT INTO pairing_codes (id, account_id, lookup, secret_hash, expires_at) VALUES ($1, $2, $3, $4, $5)
"""
# Live codes with this public half, locked for the duration of the pairing attempt.
PAIRING_LIVE_BY_LOOKUP = """
SELECT id, account_id, secret_hash FROM pairing_codes
WHERE lookup = $1 AND used_at IS NULL AND expires_at > now() AND failed_attempts < $2
FOR UPDATE
"""
PAIRING_COUNT_FAILURE = (
    "UPDATE pairing_codes SET failed_attempts = failed_attempts + 1 WHERE id = ANY($1::text[])"
)
PAIRING_MARK_USED = "UPDATE pairing_codes SET used_at = now(), device_id = $2 WHERE id = $1"

# --- devices ----------------------------------------------------------------------------------

DEVICE_INSERT = """
INSERT INTO devices (id, account_id, name, model, app_version, token_hash) VALUES ($1, $2, $3, $4, $5, $6)
"""
_DEVICE_COLUMNS = """
id, account_id, name, model, app_version, enabled, max_in_flight, per_minute_limit, per_day_limit,
paired_at, unpaired_at, last_seen_at, battery, charging, signal, network, sims, queue_length
"""
DEVICE_BY_TOKEN = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE token_hash = $1 AND unpaired_at IS NULL"
DEVICE_FOR_ACCOUNT = (
    f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = $1 AND account_id = $2 AND unpaired_at IS NULL"
)
# $1 account, $2 cursor, $3 limit
DEVICE_LIST = f"""
SELECT {_DEVICE_COLUMNS} FROM devices
WHERE account_id = $1 AND unpaired_at IS NULL AND id > $2 ORDER BY id LIMIT $3
"""
DEVICE_ALL_PAIRED = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE unpaired_at IS NULL"
# $1 id, $2 account, $3 name, $4 enabled, $5 max_in_flight, $6 per_minute, $7 per_day; each NULL = unchanged
# except limits, which use $8/$9/$10 flags to allow clearing back to the default.
DEVICE_UPDATE = f"""
UPDATE devices SET
    name = coalesce($3, name),
    enabled = coalesce($4, enabled),
    max_in_flight = CASE WHEN $8 THEN $5 ELSE max_in_flight END,
    per_minute_limit = CASE WHEN $9 THEN $6 ELSE per_minute_limit END,
    per_day_limit = CASE WHEN $10 THEN $7 ELSE per_day_limit END
WHERE id = $1 AND account_id = $2 AND unpaired_at IS NULL
RETURNING {_DEVICE_COLUMNS}
"""
DEVICE_UNPAIR = """
UPDATE devices SET unpaired_at = now() WHERE id = $1 AND account_id = $2 AND unpaired_at IS NULL RETURNING id
"""
# Telemetry flush: arrays of equal length, one element per device.
DEVICE_TELEMETRY_FLUSH = """
UPDATE devices d SET
    last_seen_at = u.last_seen_at, battery = u.battery, charging = u.charging, signal = u.signal,
    network = u.network, sims = u.sims::jsonb, queue_length = u.queue_length,
    app_version = coalesce(u.app_version, d.app_version)
FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::bool[], $5::int[], $6::text[], $7::text[],
            $8::int[], $9::text[])
     AS u(id, last_seen_at, battery, charging, signal, network, sims, queue_length, app_version)
WHERE d.id = u.id
"""

# --- events (outbox) --------------------------------------------------------------------------

EVENT_INSERT = "INSERT INTO events (id, account_id, type, data) VALUES ($1, $2, $3, $4::jsonb)"
EVENT_INSERT_MANY = """
INSERT INTO events (id, account_id, type, data)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
"""
