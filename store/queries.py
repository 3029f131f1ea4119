"""SQL statements not yet moved to their resource's typed module (``store/<resource>.py``, see
docs/architecture.md "The typed store"), each under a name. Code calls these; it writes no SQL.

Grouped by resource. Parameters are positional (``$1``...) and documented where not obvious.
"""

from __future__ import annotations

# --- accounts ---------------------------------------------------------------------------------

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

# --- webhooks ---------------------------------------------------------------------------------


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
