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
# Messages an account accepted since $2 (a day start) and $3 (a month start), as id floors.
ACCOUNT_SENDS_SINCE = """
SELECT count(*) FILTER (WHERE id >= $2) AS day, count(*) AS month
FROM messages WHERE account_id = $1 AND id >= $3
"""
# Ids of the messages an account sent to one number since $3 (an id floor), oldest first.
RECIPIENT_SENDS_SINCE = """
SELECT id FROM messages WHERE account_id = $1 AND to_number = $2 AND id >= $3 ORDER BY id LIMIT 100000
"""
# Queue pause, durable per account ($2 true = pause, false = resume).
ACCOUNT_SET_QUEUE_PAUSED = """
UPDATE accounts SET queue_paused_at = CASE WHEN $2 THEN coalesce(queue_paused_at, now()) END
WHERE id = $1 RETURNING queue_paused_at
"""
ACCOUNTS_QUEUE_PAUSED = "SELECT id FROM accounts WHERE queue_paused_at IS NOT NULL"
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

# Unfinished work for restart recovery.
MESSAGE_UNFINISHED = """
SELECT id, account_id, to_number, body, sealed_body, priority, pinned_device_id, sim_slot, attempts,
       expires_at, device_id, acked_at, cancel_requested_at, cancel_reason, batch_id,
       (SELECT count(*) FROM message_attempts a WHERE a.message_id = messages.id AND a.outcome = 'failed')::int
           AS failures
FROM messages WHERE status IN ('queued', 'dispatched') AND NOT (batch_id IS NOT NULL AND status = 'queued')
ORDER BY id
"""
# (A list item still queued is not loaded here: the dispatch loop feeds those in chunks, see
# BATCH_ITEMS_NEXT.)

# Transitions: arrays of equal length. Each returns the ids whose status changed, so the caller
# knows which events to write. Status only moves forward; the device guard stops a relay from
# reporting on a message it does not hold.
MESSAGE_DISPATCHED = """
WITH u AS (
    UPDATE messages m SET status = CASE WHEN m.status = 'queued' THEN 'dispatched' ELSE m.status END,
        device_id = v.device_id, acked_at = NULL, attempts = v.attempt,
        dispatched_at = coalesce(m.dispatched_at, v.at)
    FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[]) AS v(id, device_id, attempt, at)
    WHERE m.id = v.id AND m.status IN ('queued', 'dispatched')
    RETURNING m.id, v.device_id, v.attempt, v.at,
        CASE WHEN m.dispatched_at = v.at
             THEN extract(epoch FROM v.at - greatest(m.queued_at, m.not_before))::float8 END AS waited
), attempt AS (
    INSERT INTO message_attempts (message_id, attempt, device_id, dispatched_at)
    SELECT id, attempt, device_id, at FROM u
    ON CONFLICT (message_id, attempt) DO UPDATE SET device_id = EXCLUDED.device_id,
        dispatched_at = EXCLUDED.dispatched_at, acked_at = NULL, outcome = NULL, reason = NULL, finished_at = NULL
)
SELECT id, waited FROM u
"""
MESSAGE_ACKED = """
WITH u AS (
    UPDATE messages m SET acked_at = v.at
    FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS v(id, device_id, at)
    WHERE m.id = v.id AND m.device_id = v.device_id AND m.status = 'dispatched'
    RETURNING m.id, m.attempts, v.at
)
UPDATE message_attempts a SET acked_at = u.at FROM u WHERE a.message_id = u.id AND a.attempt = u.attempts
RETURNING a.message_id, extract(epoch FROM u.at - a.dispatched_at)::float8
"""
# Back to the queue (relay offline before ack, or a retryable failure): $4 outcome, $5 reason.
# device_id keeps naming the last relay: a late report from it still counts.
MESSAGE_REQUEUED = """
WITH u AS (
    UPDATE messages m SET acked_at = NULL
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])
         AS v(id, device_id, at, outcome, reason)
    WHERE m.id = v.id AND m.device_id = v.device_id AND m.status = 'dispatched'
    RETURNING m.id, m.attempts, v.at, v.outcome, v.reason
)
UPDATE message_attempts a SET outcome = u.outcome, reason = u.reason, finished_at = u.at
FROM u WHERE a.message_id = u.id AND a.attempt = u.attempts
RETURNING a.message_id
"""
# When a reported event happened: the relay's own time (v.reported, the report's `at`) if it is
# plausible — not more than 5 minutes after the gateway received the report (v.at) nor before the
# message was dispatched — bounded to [dispatched_at, v.at]; the gateway's receive time otherwise.
_REPORTED_AT = """CASE
    WHEN v.reported IS NULL OR v.reported > v.at + interval '5 minutes'
         OR v.reported < m.dispatched_at - interval '5 minutes' THEN v.at
    ELSE least(v.at, greatest(v.reported, m.dispatched_at)) END"""
# $3 receive time, $4 the relay's time (or NULL); each returns (id, the time stored, the seconds
# of the leg that ended: ack → sent, sent → delivered; for the metrics).
MESSAGE_SENT = f"""
UPDATE messages m SET status = 'sent', sent_at = {_REPORTED_AT}
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS v(id, device_id, at, reported)
WHERE m.id = v.id AND m.device_id = v.device_id AND m.status IN ('queued', 'dispatched')
RETURNING m.id, m.sent_at, extract(epoch FROM m.sent_at - m.acked_at)::float8
"""
MESSAGE_DELIVERED = f"""
UPDATE messages m SET status = 'delivered', delivered_at = greatest({_REPORTED_AT}, m.sent_at),
    sent_at = coalesce(m.sent_at, {_REPORTED_AT})
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS v(id, device_id, at, reported)
WHERE m.id = v.id AND m.device_id = v.device_id AND m.status IN ('queued', 'dispatched', 'sent')
RETURNING m.id, m.delivered_at, extract(epoch FROM m.delivered_at - m.sent_at)::float8
"""
# A sent/delivered report for a message that already failed, from the relay it was last handed
# to: kept beside the failure (status stays failed), on the message and its last attempt. Moves
# only forward too (nothing -> sent -> delivered); returns the ids that changed.
MESSAGE_LATE_REPORT = """
WITH u AS (
    UPDATE messages m SET late_report_status = v.status, late_report_at = v.at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS v(id, device_id, status, at)
    WHERE m.id = v.id AND m.device_id = v.device_id AND m.status = 'failed'
      AND (m.late_report_status IS NULL OR (m.late_report_status = 'sent' AND v.status = 'delivered'))
    RETURNING m.id, m.attempts, v.status, v.at
), attempt AS (
    UPDATE message_attempts a SET late_report_status = u.status, late_report_at = u.at
    FROM u WHERE a.message_id = u.id AND a.attempt = u.attempts
)
SELECT id FROM u
"""
# $2 device guard: NULL for failures the gateway decides (expiry, no relay); for those the detail
# names the last attempt when it ended (e.g. "last attempt: radio_off on dev_…"), else $6.
MESSAGE_FAILED = f"""
UPDATE messages m SET status = 'failed', failed_at = {_REPORTED_AT}, failure_reason = v.reason,
    failure_reason_detail = CASE WHEN v.device_id IS NOT NULL THEN v.detail ELSE coalesce(
        (SELECT 'last attempt: ' || coalesce(a.reason, a.outcome) || ' on ' || a.device_id
         FROM message_attempts a
         WHERE a.message_id = m.id AND a.attempt = m.attempts AND a.outcome IS NOT NULL),
        v.detail) END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[])
     AS v(id, device_id, at, reported, reason, detail)
WHERE m.id = v.id AND (v.device_id IS NULL OR m.device_id = v.device_id)
  AND m.status IN ('queued', 'dispatched', 'sent')
RETURNING m.id, m.failed_at
"""
# Cancelled ($2 device, $4 attempt, $5 reason). By the gateway ($2 NULL): a message that is
# scheduled or waits in the queue, with the attempt count the gateway knows (a re-dispatch since
# bumps it, so a message on its way to a relay is never cancelled from under it). By the relay
# ($2 set): its answer `cancelled` to the cancel the gateway asked of it.
MESSAGE_CANCELLED = """
UPDATE messages m SET status = 'cancelled', cancelled_at = v.at, cancel_reason = v.reason
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::text[])
     AS v(id, device_id, at, attempt, reason)
WHERE m.id = v.id AND CASE
    WHEN v.device_id IS NULL THEN m.status IN ('scheduled', 'queued', 'dispatched') AND m.acked_at IS NULL
        AND m.attempts = v.attempt
    ELSE m.status = 'dispatched' AND m.device_id = v.device_id AND m.cancel_requested_at IS NOT NULL END
RETURNING m.id, m.cancelled_at
"""
# A cancel asked of the relay that holds the message ($1 id, $2 device, $3 time, $4 reason):
# kept until the relay answers; the first request's time and reason stay.
MESSAGE_CANCEL_REQUESTED = """
UPDATE messages SET cancel_requested_at = coalesce(cancel_requested_at, $3),
    cancel_reason = coalesce(cancel_reason, $4)
WHERE id = $1 AND device_id = $2 AND status = 'dispatched' RETURNING id
"""
# Scheduled messages to release by $1 (restart and the pipeline's look-ahead horizon).
MESSAGE_SCHEDULED_DUE = """
SELECT id, account_id, to_number, body, sealed_body, priority, pinned_device_id, sim_slot, expires_at,
       not_before
FROM messages WHERE status = 'scheduled' AND not_before <= $1 AND batch_id IS NULL ORDER BY not_before, id
"""
# Held messages whose time came: scheduled -> queued; returns the ids released.
MESSAGE_RELEASE = """
UPDATE messages SET status = 'queued' WHERE id = ANY($1::text[]) AND status = 'scheduled' RETURNING id
"""
# Close the current attempt of messages that finished (sent/failed).
ATTEMPT_FINISH = """
UPDATE message_attempts a SET outcome = v.outcome, reason = v.reason, finished_at = v.at
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS v(id, outcome, reason, at), messages m
WHERE m.id = v.id AND a.message_id = m.id AND a.attempt = m.attempts
  AND (a.outcome IS NULL OR a.outcome = 'sent')
"""
# The event payload of message.* events, for the ids given.
MESSAGE_EVENT_DATA = """
SELECT m.id, m.account_id, m.status, m.to_number, m.device_id, d.name AS device_name, m.attempts,
       m.failure_reason, m.failure_reason_detail, m.metadata, m.kind, m.late_report_status, m.late_report_at,
       m.cancel_reason
FROM messages m LEFT JOIN devices d ON d.id = m.device_id
WHERE m.id = ANY($1::text[])
"""

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

# --- batches (list sends) ---------------------------------------------------------------------

# The dispatch loop's feed: the next still queued items of a batch after $2 (id order), at
# most $3, with what the relay needs.
BATCH_ITEMS_NEXT = """
SELECT id, account_id, to_number, body, priority, pinned_device_id, sim_slot, expires_at
FROM messages WHERE batch_id = $1 AND status = 'queued' AND id > $2
ORDER BY id LIMIT $3
"""
# A scheduled batch's time came ($1 batch): its items scheduled -> queued (the feed reads them next).
BATCH_RELEASE = """
UPDATE messages SET status = 'queued', hold_reason = NULL WHERE batch_id = $1 AND status = 'scheduled'
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
