"""SQL statements not yet moved to their resource's typed module (``store/<resource>.py``, see
docs/architecture.md "The typed store"), each under a name. Code calls these; it writes no SQL.

Grouped by resource. Parameters are positional (``$1``...) and documented where not obvious.
"""

from __future__ import annotations

# --- accounts ---------------------------------------------------------------------------------

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
