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
ACCOUNT_LIST = "SELECT * FROM accounts ORDER BY id LIMIT 10000"
# $2 name, $3 relay mode: NULL = unchanged; $4 default region applies only when $5 is true.
ACCOUNT_UPDATE_PROFILE = """
UPDATE accounts SET name = coalesce($2, name), relay_mode = coalesce($3, relay_mode),
    default_region = CASE WHEN $5 THEN $4 ELSE default_region END
WHERE id = $1 RETURNING *
"""
# Quiet hours: $2 the JSON of docs/api.md "Quiet hours", or NULL (send at any time).
ACCOUNT_SET_QUIET_HOURS = "UPDATE accounts SET quiet_hours = $2::jsonb WHERE id = $1 RETURNING *"
# Destination policy; a NULL parameter keeps that setting. $2 extra_number_types,
# $3 allowed_countries ('{}' = all), $4 otp_per_number_hour, $5 otp_per_number_day.
ACCOUNT_UPDATE_NUMBER_POLICY = """
UPDATE accounts SET extra_number_types = coalesce($2, extra_number_types),
                    allowed_countries = coalesce($3, allowed_countries),
                    otp_per_number_hour = coalesce($4, otp_per_number_hour),
                    otp_per_number_day = coalesce($5, otp_per_number_day)
WHERE id = $1
RETURNING *
"""

# Sending caps (v7); $2 daily, $3 monthly, $4 per recipient per hour. $5/$6/$7 true = set that
# one (to NULL too: no cap / the gateway default), false = keep it.
ACCOUNT_UPDATE_CAPS = """
UPDATE accounts SET daily_send_limit = CASE WHEN $5 THEN $2 ELSE daily_send_limit END,
                    monthly_send_limit = CASE WHEN $6 THEN $3 ELSE monthly_send_limit END,
                    per_recipient_hour_limit = CASE WHEN $7 THEN $4 ELSE per_recipient_hour_limit END
WHERE id = $1
RETURNING *
"""
# GET /v1/queue: $2 messages accepted since (an id floor), $3 events since (an id floor).
QUEUE_RECENT = """
SELECT (SELECT count(*) FROM messages WHERE account_id = $1 AND id >= $2) AS accepted,
       (SELECT count(*) FROM messages WHERE account_id = $1 AND status = 'scheduled') AS scheduled,
       count(*) FILTER (WHERE type = 'message.sent') AS sent,
       count(*) FILTER (WHERE type = 'message.delivered') AS delivered,
       count(*) FILTER (WHERE type = 'message.failed') AS failed
FROM events WHERE account_id = $1 AND id >= $3
"""

# --- access tokens ----------------------------------------------------------------------------

TOKEN_INSERT = """
INSERT INTO access_tokens (id, account_id, name, token_hash, hint, scopes)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, account_id, name, hint, scopes, created_at, last_used_at, revoked_at
"""
TOKEN_ACTIVE_COUNT = "SELECT count(*) FROM access_tokens WHERE account_id = $1 AND revoked_at IS NULL"
# Authenticate and stamp last_used_at in one round trip ($1 = token hash).
TOKEN_AUTHENTICATE = """
WITH t AS (
    UPDATE access_tokens SET last_used_at = now()
    WHERE token_hash = $1 AND revoked_at IS NULL
    RETURNING id, account_id, scopes
)
SELECT t.id AS token_id, t.scopes, a.*
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

# Live codes of an account ($1): how many, and when the first of them expires.
PAIRING_LIVE_FOR_ACCOUNT = """
SELECT count(*) AS live, min(expires_at) AS first_expiry FROM pairing_codes
WHERE account_id = $1 AND used_at IS NULL AND expires_at > now() AND failed_attempts < $2
"""
# Spent or expired codes older than a day ($1 seconds) are of no use to anyone.
PAIRING_PURGE = "DELETE FROM pairing_codes WHERE expires_at < now() - make_interval(secs => $1)"
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
paired_at, unpaired_at, last_seen_at, battery, charging, signal, network, sims, queue_length,
sim_policy, sim_limits
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
DEVICE_ALL_FOR_ACCOUNT = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE account_id = $1 AND unpaired_at IS NULL ORDER BY id LIMIT 10000"
# $1 id, $2 account, $3 name, $4 enabled, $5 max_in_flight, $6 per_minute, $7 per_day; each NULL = unchanged
# except limits, which use $8/$9/$10 flags to allow clearing back to the default; $11 SIM policy,
# $12 per-SIM daily limits (a JSON object replacing the stored one), NULL = unchanged.
DEVICE_UPDATE = f"""
UPDATE devices SET
    name = coalesce($3, name),
    enabled = coalesce($4, enabled),
    max_in_flight = CASE WHEN $8 THEN $5 ELSE max_in_flight END,
    per_minute_limit = CASE WHEN $9 THEN $6 ELSE per_minute_limit END,
    per_day_limit = CASE WHEN $10 THEN $7 ELSE per_day_limit END,
    sim_policy = coalesce($11, sim_policy),
    sim_limits = coalesce($12::jsonb, sim_limits)
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

EVENT_INSERT_MANY = """
INSERT INTO events (id, account_id, type, data)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
"""

# --- messages ---------------------------------------------------------------------------------

# Group-committed accept: one row per array element.
MESSAGE_INSERT_MANY = """
INSERT INTO messages (id, account_id, kind, to_number, body, encoding, segments, priority,
                      pinned_device_id, sim_slot, metadata, expires_at, queued_at, sealed_body,
                      status, send_at, not_before, hold_reason)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
                     $8::smallint[], $9::text[], $10::smallint[], $11::jsonb[], $12::timestamptz[],
                     $13::timestamptz[], $14::bytea[], $15::text[], $16::timestamptz[],
                     $17::timestamptz[], $18::text[])
"""
MESSAGE_INSERT = """
INSERT INTO messages (id, account_id, kind, to_number, body, encoding, segments, priority,
                      pinned_device_id, sim_slot, metadata, expires_at, queued_at, sealed_body,
                      status, send_at, not_before, hold_reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15, $16, $17, $18)
"""
IDEMPOTENCY_INSERT = """
INSERT INTO idempotency_keys (account_id, key, request_hash, response) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (account_id, key) DO NOTHING RETURNING key
"""
IDEMPOTENCY_GET = "SELECT request_hash, response FROM idempotency_keys WHERE account_id = $1 AND key = $2"
IDEMPOTENCY_PURGE = "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)"

# (A list item still queued is not loaded here: the dispatch loop feeds those in chunks, see
# BATCH_ITEMS_NEXT.)


MESSAGE_STATUS = """
SELECT m.*, d.name AS device_name FROM messages m LEFT JOIN devices d ON d.id = m.device_id
WHERE m.id = $1 AND m.account_id = $2
"""
MESSAGE_ATTEMPTS = """
SELECT a.*, d.name AS device_name FROM message_attempts a LEFT JOIN devices d ON d.id = a.device_id
WHERE a.message_id = $1 ORDER BY a.attempt
"""
# $1 account, $2 cursor ('' first page), $3 limit, $4 status or NULL, $5 since or NULL, $6 to or NULL,
# $7 batch id or NULL
MESSAGE_LIST = """
SELECT m.*, d.name AS device_name FROM messages m LEFT JOIN devices d ON d.id = m.device_id
WHERE m.account_id = $1 AND ($2 = '' OR m.id < $2)
  AND ($4::text IS NULL OR m.status = $4) AND ($5::timestamptz IS NULL OR m.queued_at >= $5)
  AND ($6::text IS NULL OR m.to_number = $6) AND ($7::text IS NULL OR m.batch_id = $7)
ORDER BY m.id DESC LIMIT $3
"""

# Messages of an account ($1) accepted since the time encoded in the id bound $2 (ids are ULIDs,
# so a time range is an index range).
MESSAGE_COUNT_SINCE = "SELECT count(*) FROM messages WHERE account_id = $1 AND id >= $2"

# --- webhooks ---------------------------------------------------------------------------------

# Launch readiness: enabled endpoints of the account, and the state of its latest test delivery.
WEBHOOK_READINESS = """
SELECT (SELECT count(*) FROM webhook_endpoints WHERE account_id = $1 AND deleted_at IS NULL AND enabled)
           AS endpoints,
       (SELECT status FROM webhook_deliveries WHERE account_id = $1 AND event_type = 'webhook.test'
        ORDER BY id DESC LIMIT 1) AS last_test
"""

_ENDPOINT_COLUMNS = (
    "id, account_id, url, events, description, enabled, disabled_reason, created_at, previous_expires_at"
)
WEBHOOK_COUNT = "SELECT count(*) FROM webhook_endpoints WHERE account_id = $1 AND deleted_at IS NULL"
WEBHOOK_INSERT = f"""
INSERT INTO webhook_endpoints (id, account_id, url, events, description, secret)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_ENDPOINT_COLUMNS}
"""
WEBHOOK_GET = f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
WEBHOOK_LIST = f"""
SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
WHERE account_id = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3
"""
# $3 url, $4 events, $5 enabled, $6 description: NULL = unchanged. Re-enabling clears the reason.
WEBHOOK_UPDATE = f"""
UPDATE webhook_endpoints SET url = coalesce($3, url), events = coalesce($4, events),
    enabled = coalesce($5, enabled), description = coalesce($6, description),
    disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END
WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING {_ENDPOINT_COLUMNS}
"""
WEBHOOK_DELETE = """
UPDATE webhook_endpoints SET deleted_at = now(), enabled = false
WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING id
"""
WEBHOOK_ROTATE = f"""
UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = now() + make_interval(secs => $4),
    secret = $3
WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING {_ENDPOINT_COLUMNS}
"""
WEBHOOK_DISABLE = "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1"
# What an attempt needs: where to, and the secrets signing right now.
WEBHOOK_TARGET = """
SELECT url, enabled, deleted_at IS NOT NULL AS deleted, secret,
       CASE WHEN previous_expires_at > now() THEN previous_secret END AS previous_secret
FROM webhook_endpoints WHERE id = $1
"""

# Fan-out: events not yet matched to endpoints, oldest first, locked against other dispatchers.
EVENTS_PENDING = """
SELECT id, account_id, type, data FROM events WHERE fanned_out_at IS NULL ORDER BY id LIMIT $1
FOR UPDATE SKIP LOCKED
"""
# One delivery per (event, subscribed enabled endpoint). $1 event ids.
DELIVERIES_FAN_OUT = """
INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_id, event_type, request_id, next_attempt_at)
SELECT 'dlv_' || substr(e.id, 5) || '_' || substr(w.id, 5), e.account_id, w.id, e.id, e.type,
       e.data ->> 'request_id', now()
FROM events e JOIN webhook_endpoints w
  ON w.account_id = e.account_id AND w.enabled AND w.deleted_at IS NULL AND e.type = ANY (w.events)
WHERE e.id = ANY ($1::text[])
ON CONFLICT (endpoint_id, event_id) DO NOTHING
"""
EVENTS_MARK_FANNED_OUT = "UPDATE events SET fanned_out_at = now() WHERE id = ANY ($1::text[])"
# webhook.test: an event and its one delivery, bypassing fan-out.
EVENT_INSERT_FANNED_OUT = """
INSERT INTO events (id, account_id, type, data, fanned_out_at) VALUES ($1, $2, $3, $4::jsonb, now())
"""
DELIVERY_INSERT = """
INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_id, event_type, request_id, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, now())
"""
# Due deliveries not already being attempted in this process ($2).
DELIVERIES_DUE = """
SELECT d.id, d.endpoint_id, d.event_id, d.attempts, d.manual, e.type, e.data, e.created_at
FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND NOT (d.id = ANY ($2::text[]))
ORDER BY d.next_attempt_at LIMIT $1
"""
DELIVERIES_NEXT_DUE = """
SELECT min(next_attempt_at) FROM webhook_deliveries
WHERE status = 'pending' AND NOT (id = ANY ($1::text[]))
"""
# Record an attempt and the delivery's new state in one statement.
ATTEMPT_RECORD = """
WITH d AS (
    UPDATE webhook_deliveries SET attempts = attempts + 1, status = $2, next_attempt_at = $3,
        last_attempt_at = $4, manual = false
    WHERE id = $1 RETURNING id, attempts
)
INSERT INTO webhook_attempts (delivery_id, attempt, trigger, started_at, duration_ms, http_status, error,
                              response_excerpt, outcome, next_attempt_at)
SELECT d.id, d.attempts, $5, $4, $6, $7, $8, $9, $10, $3 FROM d
"""
# $1 account, $2 cursor, $3 limit, $4 endpoint, $5 event type, $6 status, $7 request id (NULLs = any)
DELIVERIES_LIST = """
SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.request_id, d.status, d.attempts, d.next_attempt_at,
       d.last_attempt_at, d.created_at
FROM webhook_deliveries d
WHERE d.account_id = $1 AND ($2 = '' OR d.id < $2)
  AND ($4::text IS NULL OR d.endpoint_id = $4) AND ($5::text IS NULL OR d.event_type = $5)
  AND ($6::text IS NULL OR d.status = $6) AND ($7::text IS NULL OR d.request_id = $7)
ORDER BY d.id DESC LIMIT $3
"""
DELIVERY_GET = """
SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.request_id, d.status, d.attempts, d.next_attempt_at,
       d.last_attempt_at, d.created_at, e.data
FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
WHERE d.id = $1 AND d.account_id = $2
"""
DELIVERY_ATTEMPTS = """
SELECT attempt, trigger, started_at, duration_ms, http_status, error, response_excerpt, outcome, next_attempt_at
FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt
"""
# Manual redelivery: due now, whatever its state; the next attempt is marked manual.
DELIVERY_RETRY_NOW = """
UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), manual = true
WHERE id = $1 AND account_id = $2 RETURNING id
"""
DELIVERIES_CANCEL_FOR_ENDPOINT = """
UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL WHERE endpoint_id = $1 AND status = 'pending'
"""

# --- otp --------------------------------------------------------------------------------------

# Serialises sends for one (account, number, purpose) so the throttle and the invalidation of
# the previous code see each other's writes. $1: the pair's key text.
OTP_LOCK_PAIR = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
# Resend throttle: sends of the pair since $4 (now - 1 hour): count, first and last.
OTP_SEND_WINDOW = """
SELECT count(*) AS sent, min(created_at) AS first_at, max(created_at) AS last_at
FROM otps WHERE account_id = $1 AND to_number = $2 AND purpose = $3 AND created_at > $4
"""
# A new code replaces the pair's pending one ($4 now: a pending code past its expiry is expired).
OTP_INVALIDATE_PENDING = """
UPDATE otps SET status = CASE WHEN expires_at <= $4 THEN 'expired' ELSE 'invalidated' END
WHERE account_id = $1 AND to_number = $2 AND purpose = $3 AND status = 'pending'
RETURNING id, message_id
"""
# Per-number caps across purposes: times of the sends to ($1 account, $2 number) since $3
# (now - 24 hours), oldest first.
OTP_NUMBER_SENDS = """
SELECT coalesce(array_agg(created_at ORDER BY created_at), '{}') AS sent_at
FROM otps WHERE account_id = $1 AND to_number = $2 AND created_at > $3
"""
OTP_INSERT = """
INSERT INTO otps (id, account_id, to_number, purpose, locale, code_hash, code_length, message_id,
                  max_attempts, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
_OTP_VERIFY_COLUMNS = """
id, to_number, purpose, code_hash, status, attempts_used, max_attempts, expires_at, message_id
"""
OTP_BY_ID_FOR_UPDATE = f"SELECT {_OTP_VERIFY_COLUMNS} FROM otps WHERE id = $1 AND account_id = $2 FOR UPDATE"
# The latest code of a (number, purpose) pair.
OTP_LATEST_FOR_UPDATE = f"""
SELECT {_OTP_VERIFY_COLUMNS} FROM otps WHERE account_id = $1 AND to_number = $2 AND purpose = $3
ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE
"""
OTP_RECORD_VERIFY = "UPDATE otps SET status = $2, attempts_used = $3, verified_at = $4 WHERE id = $1"
# Status view (never the code hash) with its SMS's delivery state.
OTP_STATUS = """
SELECT o.id, o.to_number, o.purpose, o.locale, o.code_length, o.status, o.attempts_used, o.max_attempts,
       o.expires_at, o.created_at, o.verified_at, o.message_id, m.status AS sms_status,
       m.failure_reason AS sms_failure_reason, m.device_id AS sms_device_id, m.sent_at AS sms_sent_at,
       m.delivered_at AS sms_delivered_at
FROM otps o JOIN messages m ON m.id = o.message_id
WHERE o.id = $1 AND o.account_id = $2
"""

# --- recipients -------------------------------------------------------------------------------

# What the API shows of a recipient (never the search columns).
_RECIPIENT_COLUMNS = "id, name, phone, tags, locale, metadata, opted_out, created_at, updated_at"
RECIPIENT_COUNT = "SELECT count(*) FROM recipients WHERE account_id = $1"
# $1 id, $2 account, $3 name, $4 phone, $5 tags, $6 locale, $7 metadata (JSON text), $8 opted_out,
# $9 name_key, $10 search_grams. No row when the number is already in the directory.
RECIPIENT_INSERT = f"""
INSERT INTO recipients (id, account_id, name, phone, tags, locale, metadata, opted_out, name_key, search_grams)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)
ON CONFLICT (account_id, phone) DO NOTHING
RETURNING {_RECIPIENT_COLUMNS}
"""
RECIPIENT_GET = f"SELECT {_RECIPIENT_COLUMNS} FROM recipients WHERE id = $1 AND account_id = $2"
RECIPIENT_GET_FOR_UPDATE = f"""
SELECT {_RECIPIENT_COLUMNS} FROM recipients WHERE id = $1 AND account_id = $2 FOR UPDATE
"""
RECIPIENT_ID_BY_PHONE = "SELECT id FROM recipients WHERE account_id = $1 AND phone = $2"
RECIPIENT_OPTED_OUT = "SELECT opted_out FROM recipients WHERE account_id = $1 AND phone = $2"
# Every column a PATCH may change, set at once (the caller merged the old row and the change).
RECIPIENT_SET = f"""
UPDATE recipients SET name = $3, phone = $4, tags = $5, locale = $6, metadata = $7::jsonb,
                      opted_out = $8, name_key = $9, search_grams = $10, updated_at = now()
WHERE id = $1 AND account_id = $2
RETURNING {_RECIPIENT_COLUMNS}
"""
RECIPIENT_DELETE = "DELETE FROM recipients WHERE id = $1 AND account_id = $2 RETURNING id"
# Opt-out by number from the CLI: an unknown number is added (empty name) so the opt-out holds.
# $1 id, $2 account, $3 phone, $4 opted_out, $5 search_grams (of the number alone)
RECIPIENT_SET_OPT_OUT = f"""
INSERT INTO recipients (id, account_id, name, phone, opted_out, name_key, search_grams)
VALUES ($1, $2, '', $3, $4, '', $5)
ON CONFLICT (account_id, phone) DO UPDATE SET opted_out = EXCLUDED.opted_out, updated_at = now()
RETURNING {_RECIPIENT_COLUMNS}
"""
# Ids of the given recipients that belong to the account ($1 account, $2 ids).
RECIPIENT_IDS_OWNED = "SELECT id FROM recipients WHERE account_id = $1 AND id = ANY($2::text[])"
# Numbers not yet in the directory are added with an empty name (the caller then reads every id
# with RECIPIENT_IDS_BY_PHONES). $1 account, $2 new ids, $3 phones, $4 each number's search grams
# joined by spaces.
RECIPIENT_ENSURE_PHONES = """
INSERT INTO recipients (id, account_id, name, phone, name_key, search_grams)
SELECT g.id, $1, '', g.phone, '', string_to_array(g.grams, ' ')
FROM unnest($2::text[], $3::text[], $4::text[]) AS g (id, phone, grams)
ON CONFLICT (account_id, phone) DO NOTHING
"""
RECIPIENT_IDS_BY_PHONES = "SELECT id FROM recipients WHERE account_id = $1 AND phone = ANY($2::text[])"


# Searches are planned for their actual values (a generic plan cannot know that a tag or a
# 3-gram is rare, and would walk the whole directory in id order looking for it).
RECIPIENT_SEARCH_CUSTOM_PLAN = "SET LOCAL plan_cache_mode = force_custom_plan"


def recipient_search(*, grams: bool, name_like: bool, phone_like: bool, tag: bool, opted_out: bool) -> str:
    """The directory search for the filters in use ($1 account, $2 cursor, $3 limit, then one
    parameter per filter in this order: grams, name pattern, phone pattern, tag, opted_out).

    One statement per combination rather than ``$n IS NULL OR ...``, so that each prepared
    statement's plan can use the index its filter needs.
    """
    where = ["account_id = $1", "id > $2"]
    filters = (
        (grams, "search_grams @> ${}::text[]"),
        (name_like, "name_key LIKE ${}"),
        (phone_like, "phone LIKE ${}"),
        (tag, "tags @> ARRAY[${}::text]"),
        (opted_out, "opted_out = ${}"),
    )
    n = 3
    for used, clause in filters:
        if used:
            n += 1
            where.append(clause.format(n))
    return f"SELECT {_RECIPIENT_COLUMNS} FROM recipients WHERE {' AND '.join(where)} ORDER BY id LIMIT $3"


# CSV import: rows are COPYed into this temp table, then upserted in one statement. The grams
# travel as one text joined by U+001F (no name can hold a control character): COPY of a text
# is several times cheaper for the gateway than COPY of a text[].
RECIPIENT_IMPORT_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS recipient_import (
    id text, name text, phone text, tags text[], locale text, metadata jsonb, name_key text,
    search_grams text
) ON COMMIT DROP
"""
RECIPIENT_IMPORT_COLUMNS = ("id", "name", "phone", "tags", "locale", "metadata", "name_key", "search_grams")
RECIPIENT_IMPORT_CLEAR = "TRUNCATE recipient_import"
# $1 account, $2 the file has a tags column, $3 it has a locale column. Metadata columns merge
# into what the recipient has. Returns how many rows were inserted and how many changed.
RECIPIENT_IMPORT_UPSERT = """
WITH written AS (
    INSERT INTO recipients AS r (id, account_id, name, phone, tags, locale, metadata, name_key, search_grams)
    SELECT id, $1, name, phone, tags, locale, metadata, name_key, string_to_array(search_grams, E'\x1f')
    FROM recipient_import
    ON CONFLICT (account_id, phone) DO UPDATE
    SET name = EXCLUDED.name, name_key = EXCLUDED.name_key, search_grams = EXCLUDED.search_grams,
        tags = CASE WHEN $2 THEN EXCLUDED.tags ELSE r.tags END,
        locale = CASE WHEN $3 THEN EXCLUDED.locale ELSE r.locale END,
        metadata = r.metadata || EXCLUDED.metadata, updated_at = now()
    WHERE (r.name, r.tags, r.locale, r.metadata)
          IS DISTINCT FROM (EXCLUDED.name, CASE WHEN $2 THEN EXCLUDED.tags ELSE r.tags END,
                            CASE WHEN $3 THEN EXCLUDED.locale ELSE r.locale END, r.metadata || EXCLUDED.metadata)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS imported, count(*) FILTER (WHERE NOT inserted) AS updated
FROM written
"""

# After a large import: fresh planner statistics and the GIN indexes' pending entries merged,
# so that searches right after it are as fast as later ones.
RECIPIENT_ANALYZE = """
ANALYZE recipients;
SELECT gin_clean_pending_list('recipients_grams_idx'), gin_clean_pending_list('recipients_tags_idx');
"""

# --- recipient lists --------------------------------------------------------------------------

_LIST_COLUMNS = """
l.id, l.name, l.created_at, l.updated_at,
(SELECT count(*) FROM recipient_list_members m WHERE m.list_id = l.id) AS size
"""
RECIPIENT_LIST_COUNT = "SELECT count(*) FROM recipient_lists WHERE account_id = $1"
RECIPIENT_LIST_INSERT = "INSERT INTO recipient_lists (id, account_id, name) VALUES ($1, $2, $3)"
RECIPIENT_LIST_GET = f"SELECT {_LIST_COLUMNS} FROM recipient_lists l WHERE l.id = $1 AND l.account_id = $2"
# Locks the list so concurrent member changes of one list queue up.
RECIPIENT_LIST_LOCK = "SELECT id FROM recipient_lists WHERE id = $1 AND account_id = $2 FOR UPDATE"
# $1 account, $2 cursor, $3 limit
RECIPIENT_LIST_LIST = f"""
SELECT {_LIST_COLUMNS} FROM recipient_lists l WHERE l.account_id = $1 AND l.id > $2 ORDER BY l.id LIMIT $3
"""
RECIPIENT_LIST_RENAME = """
UPDATE recipient_lists SET name = $3, updated_at = now() WHERE id = $1 AND account_id = $2 RETURNING id
"""
RECIPIENT_LIST_TOUCH = "UPDATE recipient_lists SET updated_at = now() WHERE id = $1"
RECIPIENT_LIST_DELETE = "DELETE FROM recipient_lists WHERE id = $1 AND account_id = $2 RETURNING id"
# $1 list, $2 recipient ids (already checked to belong to the list's account). Returns how many were new.
RECIPIENT_LIST_ADD = """
WITH added AS (
    INSERT INTO recipient_list_members (list_id, recipient_id)
    SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING 1
)
SELECT count(*) FROM added
"""
RECIPIENT_LIST_REMOVE = """
WITH removed AS (
    DELETE FROM recipient_list_members WHERE list_id = $1 AND recipient_id = ANY($2::text[]) RETURNING 1
)
SELECT count(*) FROM removed
"""
# $1 list, $2 cursor (last recipient id seen), $3 limit
RECIPIENT_LIST_MEMBERS = """
SELECT r.id, r.name, r.phone, r.tags, r.locale, r.metadata, r.opted_out, r.created_at, r.updated_at
FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
WHERE m.list_id = $1 AND m.recipient_id > $2 ORDER BY m.recipient_id LIMIT $3
"""


# --- batches (list sends) ---------------------------------------------------------------------

# Queueing a list: the members' numbers and what a policy check needs ($1 list, $2 account).
BATCH_LIST_PHONES = """
SELECT r.phone FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
WHERE m.list_id = $1 AND r.account_id = $2 AND NOT r.opted_out
"""
# Placeholders ($3) that no member's metadata has ($1 list, $2 account).
BATCH_UNKNOWN_KEYS = """
SELECT k FROM unnest($3::text[]) AS k
WHERE NOT EXISTS (
    SELECT 1 FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
    WHERE m.list_id = $1 AND r.account_id = $2 AND r.metadata ? k
)
"""
# $5 not_before: the batch's send_at (its items are 'scheduled' until then), or NULL.
BATCH_INSERT = """
INSERT INTO batches (id, account_id, list_id, total, skipped, created_at, not_before)
VALUES ($1, $2, $3, 0, 0, $4, $5)
"""
# One message per member that is neither opted out nor in $7 (numbers to leave out), in member
# (recipient id) order, with one statement. $1 id prefix ('req_' + 19 ULID characters;
# a 7-digit sequence completes each id), $2 account, $3 list, $4 literal parts of the text and
# $5 the placeholder after each ('' after the last), $6 batch id, $7 refused numbers, $8 priority,
# $9 pinned relay, $10 metadata JSON, $11 expires_at, $12 queued_at. Encoding and segments:
# $13/$14 when the text has no placeholder (the same for everyone), else computed here as
# gateway.sending.sms_text does: $15 matches a GSM-7 text, $16 holds the characters that take
# two septets (the extension table). $17 send_at: the items are 'scheduled' until then (NULL:
# queued now). Returns how many were written.
BATCH_QUEUE_ITEMS = r"""
WITH members AS MATERIALIZED (
    SELECT r.phone, CASE WHEN cardinality($4::text[]) = 1 THEN $4[1] ELSE (
               SELECT string_agg(p.lit || coalesce(CASE p.key WHEN '' THEN '' WHEN 'name' THEN r.name
                                                   WHEN 'phone' THEN r.phone ELSE r.metadata ->> p.key END, ''),
                                 '' ORDER BY p.i)
               FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS p (lit, key, i)) END AS body,
           row_number() OVER (ORDER BY r.id) AS n
    FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
    WHERE m.list_id = $3 AND r.account_id = $2 AND NOT r.opted_out AND NOT (r.phone = ANY ($7::text[]))
), measured AS MATERIALIZED (
    SELECT n, phone, body, CASE WHEN $13::text IS NOT NULL THEN NULL ELSE body ~ $15 END AS gsm FROM members
), counted AS MATERIALIZED (
    SELECT n, phone, body, coalesce($13::text, CASE WHEN gsm THEN 'GSM-7' ELSE 'UCS-2' END) AS encoding,
           CASE WHEN $13::text IS NOT NULL THEN $14::int
                WHEN gsm THEN 2 * length(body) - length(translate(body, $16, ''))
                ELSE length(body) + length(regexp_replace(body, '[^\U00010000-\U0010FFFF]+', '', 'g'))
           END AS units
    FROM measured
), inserted AS (
    INSERT INTO messages (id, account_id, kind, to_number, body, encoding, segments, priority,
                          pinned_device_id, metadata, expires_at, queued_at, batch_id,
                          status, send_at, not_before, hold_reason)
    SELECT $1 || lpad(n::text, 7, '0'), $2, 'list', phone, body, encoding,
           CASE WHEN $13::text IS NOT NULL THEN units
                WHEN encoding = 'GSM-7' THEN CASE WHEN units <= 160 THEN 1 ELSE ceil(units / 153.0)::int END
                ELSE CASE WHEN units <= 70 THEN 1 ELSE ceil(units / 67.0)::int END END,
           $8, $9, $10::jsonb, $11, $12, $6,
           CASE WHEN $17::timestamptz IS NULL THEN 'queued' ELSE 'scheduled' END, $17, $17,
           CASE WHEN $17::timestamptz IS NULL THEN NULL ELSE 'send_at' END
    FROM counted
    RETURNING 1
)
SELECT count(*) FROM inserted
"""
# Items of numbers the policy refuses, found while the items were written ($1 batch, $2 account,
# $3 numbers); returns how many.
BATCH_DROP_ITEMS = """
WITH dropped AS (
    DELETE FROM messages WHERE account_id = $2 AND to_number = ANY ($3::text[]) AND batch_id = $1 RETURNING 1
)
SELECT count(*) FROM dropped
"""
BATCH_SET_TOTALS = "UPDATE batches SET total = $2, skipped = $3 WHERE id = $1"
# Members not queued and why ($1 list, $2 account, $3 refused numbers, $4 at most this many).
BATCH_SKIPPED = """
SELECT r.id, r.phone, CASE WHEN r.opted_out THEN 'opted_out' ELSE 'invalid_number' END AS reason
FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
WHERE m.list_id = $1 AND r.account_id = $2 AND (r.opted_out OR r.phone = ANY ($3::text[]))
ORDER BY r.id LIMIT $4
"""
BATCH_SKIPPED_COUNT = """
SELECT count(*) FROM recipient_list_members m JOIN recipients r ON r.id = m.recipient_id
WHERE m.list_id = $1 AND r.account_id = $2 AND (r.opted_out OR r.phone = ANY ($3::text[]))
"""
BATCH_GET = """
SELECT id, account_id, list_id, total, skipped, created_at, completed_at, cancelled_at FROM batches
WHERE id = $1 AND account_id = $2
"""
# Items per status of one batch.
BATCH_COUNTS = "SELECT status, count(*)::int AS n FROM messages WHERE batch_id = $1 GROUP BY status"
# The still queued items of a batch, for cancel ($1 batch).
BATCH_QUEUED_IDS = """
SELECT id FROM messages WHERE batch_id = $1 AND status IN ('scheduled', 'queued') ORDER BY id
"""
BATCH_MARK_CANCELLED = "UPDATE batches SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = $1"
# The dispatch loop's feed: the next still queued items of a batch after $2 (id order), at
# most $3, with what the relay needs.
BATCH_ITEMS_NEXT = """
SELECT id, account_id, to_number, body, priority, pinned_device_id, sim_slot, expires_at
FROM messages WHERE batch_id = $1 AND status = 'queued' AND id > $2
ORDER BY id LIMIT $3
"""
BATCH_OPEN = "SELECT id, account_id, not_before FROM batches WHERE completed_at IS NULL ORDER BY id"
# A scheduled batch's time came ($1 batch): its items scheduled -> queued (the feed reads them next).
BATCH_RELEASE = """
UPDATE messages SET status = 'queued', hold_reason = NULL WHERE batch_id = $1 AND status = 'scheduled'
"""
# Batches of these messages ($1) that are not complete, locked (so two transactions that each
# finish a batch's last items see each other's commit before deciding).
BATCH_LOCK_OPEN_OF = """
SELECT id FROM batches WHERE id = ANY ($1::text[]) AND completed_at IS NULL ORDER BY id FOR UPDATE
"""
# Complete the batches ($1) with no item left queued or dispatched; returns what the event needs.
BATCH_COMPLETE = """
UPDATE batches b SET completed_at = now()
WHERE b.id = ANY ($1::text[]) AND b.completed_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.batch_id = b.id
                  AND m.status IN ('scheduled', 'queued', 'dispatched'))
RETURNING b.id, b.account_id, b.list_id, b.total, b.created_at, b.completed_at
"""

# The batches of these list items ($1), for completing them after a cancel.
BATCHES_OF_MESSAGES = """
SELECT DISTINCT batch_id FROM messages WHERE id = ANY ($1::text[]) AND batch_id IS NOT NULL
"""

# --- inbound SMS ------------------------------------------------------------------------------

# $1 id, $2 account, $3 device, $4 relay's id, $5 from, $6 body, $7 sim_slot, $8 received_at,
# $9 opt_action, $10 in_reply_to. NULL row back: a retry of one already stored.
INBOUND_INSERT = """
INSERT INTO inbound_messages (id, account_id, device_id, relay_message_id, from_number, body, sim_slot,
                              received_at, opt_action, in_reply_to)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (device_id, relay_message_id) DO NOTHING
RETURNING id
"""
# The latest message the account sent to a number (what an inbound SMS from it replies to).
INBOUND_REPLY_TO = """
SELECT id FROM messages WHERE account_id = $1 AND to_number = $2 ORDER BY id DESC LIMIT 1
"""
# $1 account, $2 from ('' = any), $3 since (NULL = any), $4 cursor ('' = first), $5 limit
INBOUND_LIST = """
SELECT id, device_id, from_number, body, sim_slot, received_at, stored_at, opt_action, in_reply_to
FROM inbound_messages
WHERE account_id = $1 AND ($2 = '' OR from_number = $2) AND ($3::timestamptz IS NULL OR received_at >= $3)
  AND id > $4
ORDER BY id LIMIT $5
"""

# --- dashboard sessions and live events (gateway/dashboard) -----------------------------------
# $1 id hash, $2 token id, $3 max age in seconds
DASHBOARD_SESSION_CREATE = """
INSERT INTO dashboard_sessions (id_hash, token_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
"""
# $1 id hash, $2 idle timeout in seconds. Touches the session; no row when it is unknown, idle,
# expired, or its token was revoked.
DASHBOARD_SESSION_PRINCIPAL = """
WITH s AS (
    UPDATE dashboard_sessions SET last_seen_at = now()
    WHERE id_hash = $1 AND expires_at > now() AND last_seen_at > now() - make_interval(secs => $2)
    RETURNING token_id
)
SELECT t.id AS token_id, t.scopes, a.*
FROM s JOIN access_tokens t ON t.id = s.token_id AND t.revoked_at IS NULL
JOIN accounts a ON a.id = t.account_id
"""
DASHBOARD_SESSION_DELETE = "DELETE FROM dashboard_sessions WHERE id_hash = $1"
# $1 idle timeout in seconds
DASHBOARD_SESSION_PURGE = """
DELETE FROM dashboard_sessions
WHERE expires_at <= now() OR last_seen_at <= now() - make_interval(secs => $1)
"""
# $1 account, $2 last event id seen, $3 limit
DASHBOARD_EVENTS_SINCE = """
SELECT id, type, data::text AS data FROM events WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3
"""
