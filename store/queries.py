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
