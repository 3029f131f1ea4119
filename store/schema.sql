-- relaygate: the whole database schema.
--
-- Idempotent: applied on every start (under an advisory lock), so an older database is
-- upgraded in place and a current one is left untouched. Rules for changing it:
--   * new tables: CREATE TABLE IF NOT EXISTS; new columns: ALTER TABLE ... ADD COLUMN IF NOT EXISTS;
--   * never DROP anything that holds data; bump schema_version at the bottom;
--   * keep a frozen copy of the previous version in tests/fixtures/schema_v<N>.sql so the
--     upgrade test proves that data survives.
-- Core PostgreSQL (14+) only: no extensions.

CREATE TABLE IF NOT EXISTS schema_version (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version    integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Customer accounts. relay_mode decides whether the scheduler picks the relay (auto) or the
-- request must name one (manual). subscription_expires_at NULL means no expiry.
CREATE TABLE IF NOT EXISTS accounts (
    id                      text PRIMARY KEY,
    name                    text NOT NULL,
    relay_mode              text NOT NULL DEFAULT 'auto' CHECK (relay_mode IN ('auto', 'manual')),
    default_region          text,
    subscription_expires_at timestamptz,
    status                  text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at              timestamptz NOT NULL DEFAULT now()
);

-- Access tokens for the customer API. Only a SHA-256 of the token is stored; `hint` is the
-- token's public prefix so people can tell tokens apart.
CREATE TABLE IF NOT EXISTS access_tokens (
    id           text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    token_hash   bytea NOT NULL UNIQUE,
    hint         text NOT NULL,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS access_tokens_account_idx ON access_tokens (account_id, id);

-- Relay phones. A device token (rgd_...) is stored only as its SHA-256. Limits NULL = defaults.
-- The live view (online, in-flight) is in memory; telemetry columns are flushed from it.
CREATE TABLE IF NOT EXISTS devices (
    id                text PRIMARY KEY,
    account_id        text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name              text NOT NULL,
    model             text NOT NULL DEFAULT '',
    app_version       text NOT NULL DEFAULT '',
    token_hash        bytea NOT NULL UNIQUE,
    enabled           boolean NOT NULL DEFAULT true,
    max_in_flight     integer CHECK (max_in_flight BETWEEN 1 AND 100),
    per_minute_limit  integer CHECK (per_minute_limit BETWEEN 1 AND 1000),
    per_day_limit     integer CHECK (per_day_limit BETWEEN 1 AND 100000),
    paired_at         timestamptz NOT NULL DEFAULT now(),
    unpaired_at       timestamptz,
    last_seen_at      timestamptz,
    battery           integer,
    charging          boolean,
    signal            integer,
    network           text,
    sims              jsonb NOT NULL DEFAULT '[]',
    queue_length      integer
);
CREATE INDEX IF NOT EXISTS devices_account_idx ON devices (account_id, id);

-- Single-use pairing codes. The code is stored only as a hash of its secret half; the public
-- half (`lookup`) finds it so wrong guesses can be counted against that code.
CREATE TABLE IF NOT EXISTS pairing_codes (
    id              text PRIMARY KEY,
    account_id      text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    lookup          text NOT NULL,
    secret_hash     bytea NOT NULL,
    expires_at      timestamptz NOT NULL,
    failed_attempts integer NOT NULL DEFAULT 0,
    used_at         timestamptz,
    device_id       text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pairing_codes_lookup_idx ON pairing_codes (lookup, expires_at);

-- The outbox: every event a customer may hear about (message.*, device.*, otp.verified),
-- written in the same transaction as the change that caused it. The webhook dispatcher reads it.
CREATE TABLE IF NOT EXISTS events (
    id          text PRIMARY KEY,
    account_id  text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_account_idx ON events (account_id, id);

-- Messages: one row per SMS, from accept to its final state. Status only moves forward:
-- queued -> dispatched -> sent -> delivered, or -> failed (terminal). device_id is the last
-- relay it was handed to (NULL before the first dispatch); acked_at marks that relay's ack of
-- the current hand-over (NULL while the message waits in the queue again).
CREATE TABLE IF NOT EXISTS messages (
    id               text PRIMARY KEY,
    account_id       text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind             text NOT NULL DEFAULT 'sms' CHECK (kind IN ('sms', 'otp', 'list')),
    to_number        text NOT NULL,
    body             text NOT NULL,
    encoding         text NOT NULL CHECK (encoding IN ('GSM-7', 'UCS-2')),
    segments         integer NOT NULL,
    priority         smallint NOT NULL,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'dispatched', 'sent', 'delivered', 'failed')),
    failure_reason   text,
    pinned_device_id text,
    device_id        text,
    sim_slot         smallint,
    metadata         jsonb,
    attempts         integer NOT NULL DEFAULT 0,
    expires_at       timestamptz NOT NULL,
    queued_at        timestamptz NOT NULL,
    dispatched_at    timestamptz,
    acked_at         timestamptz,
    sent_at          timestamptz,
    delivered_at     timestamptz,
    failed_at        timestamptz
);
CREATE INDEX IF NOT EXISTS messages_account_idx ON messages (account_id, id);
CREATE INDEX IF NOT EXISTS messages_account_to_idx ON messages (account_id, to_number, id);
CREATE INDEX IF NOT EXISTS messages_unfinished_idx ON messages (id) WHERE status IN ('queued', 'dispatched');

-- Every hand-over of a message to a relay and how it ended.
CREATE TABLE IF NOT EXISTS message_attempts (
    message_id    text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    device_id     text NOT NULL,
    dispatched_at timestamptz NOT NULL,
    acked_at      timestamptz,
    outcome       text,
    reason        text,
    finished_at   timestamptz,
    PRIMARY KEY (message_id, attempt)
);

-- Idempotency-Key: the first answer for (account, key), replayed for 24 hours at least.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);

-- An OTP's SMS text is stored sealed (AES-GCM under the server secret); body then holds the
-- text with the code masked, for display.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS sealed_body bytea;

-- One-time codes. The code itself is never stored: code_hash is an HMAC-SHA256 keyed with the
-- server secret. status: pending -> verified | expired | locked | invalidated (a newer code
-- for the same number and purpose was sent).
CREATE TABLE IF NOT EXISTS otps (
    id             text PRIMARY KEY,
    account_id     text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    to_number      text NOT NULL,
    purpose        text NOT NULL,
    locale         text NOT NULL,
    code_hash      bytea NOT NULL,
    code_length    smallint NOT NULL,
    message_id     text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'verified', 'expired', 'locked', 'invalidated')),
    attempts_used  integer NOT NULL DEFAULT 0,
    max_attempts   integer NOT NULL DEFAULT 5,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    verified_at    timestamptz
);
CREATE INDEX IF NOT EXISTS otps_latest_idx ON otps (account_id, to_number, purpose, created_at DESC);

-- Webhook endpoints. The signing secret must be readable to sign (it is shown to the customer
-- only once); during a rotation the previous secret keeps signing until previous_expires_at.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id                  text PRIMARY KEY,
    account_id          text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url                 text NOT NULL,
    events              text[] NOT NULL,
    description         text NOT NULL DEFAULT '',
    enabled             boolean NOT NULL DEFAULT true,
    disabled_reason     text,
    secret              text NOT NULL,
    previous_secret     text,
    previous_expires_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_account_idx ON webhook_endpoints (account_id, id);

-- Events not yet fanned out to endpoints (the dispatcher's work list).
ALTER TABLE events ADD COLUMN IF NOT EXISTS fanned_out_at timestamptz;
CREATE INDEX IF NOT EXISTS events_pending_idx ON events (id) WHERE fanned_out_at IS NULL;

-- One event for one endpoint, with its retry state. webhook-id on the wire is the event id.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              text PRIMARY KEY,
    account_id      text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_type      text NOT NULL,
    request_id      text,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'blocked')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_account_idx ON webhook_deliveries (account_id, id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';

-- Every attempt of every delivery: what the customer's endpoint answered, or why it failed.
CREATE TABLE IF NOT EXISTS webhook_attempts (
    delivery_id      text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt          integer NOT NULL,
    trigger          text NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    started_at       timestamptz NOT NULL,
    duration_ms      integer,
    http_status      integer,
    error            text,
    response_excerpt text,
    outcome          text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'blocked')),
    next_attempt_at  timestamptz,
    PRIMARY KEY (delivery_id, attempt)
);

-- A manual redelivery marks the next attempt as triggered by the customer.
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS manual boolean NOT NULL DEFAULT false;

-- Wake webhook dispatchers (in any process) when events are committed: NOTIFY is delivered at
-- commit, once per statement.
CREATE OR REPLACE FUNCTION relaygate_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('relaygate_events', '');
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS events_notify ON events;
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION relaygate_notify_events();

-- v6: each account's destination policy against toll fraud / SMS pumping (docs/api.md, "Number
-- policy and toll-fraud protection"). extra_number_types: number types refused by default that
-- the operator allowed for this account; allowed_countries: ISO 3166 region codes messages may
-- go to ('{}' = every country); otp_per_number_hour/_day: codes to one number, all purposes
-- together, per rolling hour / 24 hours.
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS extra_number_types text[] NOT NULL DEFAULT '{}';
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS allowed_countries text[] NOT NULL DEFAULT '{}';
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS otp_per_number_hour integer NOT NULL DEFAULT 10
    CHECK (otp_per_number_hour BETWEEN 1 AND 1000);
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS otp_per_number_day integer NOT NULL DEFAULT 20
    CHECK (otp_per_number_day BETWEEN 1 AND 10000);
CREATE INDEX IF NOT EXISTS otps_number_idx ON otps (account_id, to_number, created_at);

-- v6: why a message failed, for people: e.g. "last attempt: radio_off on dev_…" when it expired
-- after a relay's retryable failure. NULL when failure_reason says it all.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS failure_reason_detail text;

-- v6: late reports. A relay's sent/delivered report for a message the gateway had already
-- failed (typically relay_timeout: acked, then no report before the TTL) is kept beside the
-- failure; the status stays failed (it only moves forward). Per message and per attempt.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS late_report_status text
    CHECK (late_report_status IN ('sent', 'delivered'));
ALTER TABLE messages ADD COLUMN IF NOT EXISTS late_report_at timestamptz;
ALTER TABLE message_attempts ADD COLUMN IF NOT EXISTS late_report_status text
    CHECK (late_report_status IN ('sent', 'delivered'));
ALTER TABLE message_attempts ADD COLUMN IF NOT EXISTS late_report_at timestamptz;

-- v6: the recipients directory, recipient lists and their members (docs/api.md, "Recipients").
-- name_key is the name folded for search (NFKD, combining marks removed, case-folded, spaces
-- collapsed; computed by gateway.recipients.search, since core PostgreSQL has no unaccent).
-- search_grams holds the 3-grams of name_key and, prefixed with '#', of the number's digits:
-- a GIN index over it (core array_ops; no pg_trgm) narrows a substring search to the rows
-- holding every 3-gram of the query, which LIKE then checks. A list send can later
-- INSERT ... SELECT one message per row of recipient_list_members JOIN recipients.
CREATE TABLE IF NOT EXISTS recipients (
    id           text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL,
    phone        text NOT NULL,
    tags         text[] NOT NULL DEFAULT '{}',
    locale       text,
    metadata     jsonb NOT NULL DEFAULT '{}',
    opted_out    boolean NOT NULL DEFAULT false,
    name_key     text NOT NULL,
    search_grams text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, phone)
);
CREATE INDEX IF NOT EXISTS recipients_account_idx ON recipients (account_id, id);
CREATE INDEX IF NOT EXISTS recipients_grams_idx ON recipients USING gin (search_grams);
CREATE INDEX IF NOT EXISTS recipients_tags_idx ON recipients USING gin (tags);
CREATE INDEX IF NOT EXISTS recipients_opted_out_idx ON recipients (account_id, id) WHERE opted_out;

CREATE TABLE IF NOT EXISTS recipient_lists (
    id         text PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS recipient_lists_account_idx ON recipient_lists (account_id, id);

-- A recipient deleted from the directory leaves every list (ON DELETE CASCADE).
CREATE TABLE IF NOT EXISTS recipient_list_members (
    list_id      text NOT NULL REFERENCES recipient_lists (id) ON DELETE CASCADE,
    recipient_id text NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, recipient_id)
);
CREATE INDEX IF NOT EXISTS recipient_list_members_recipient_idx ON recipient_list_members (recipient_id);

-- v7: sending controls (docs/api.md "Cancel a message", "Scheduled send", "Quiet hours").
-- Two more statuses: scheduled (held until not_before: the requested send_at, or the opening of
-- the account's sending window) and cancelled (terminal, like delivered and failed). send_at is
-- what the request asked for; hold_reason says why a scheduled message waits. A cancel asked of
-- a relay (protocol v1.1) is recorded in cancel_requested_at until the relay answers.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'messages_status_v7_check') THEN
        ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_status_check;
        ALTER TABLE messages ADD CONSTRAINT messages_status_v7_check CHECK (status IN
            ('scheduled', 'queued', 'dispatched', 'sent', 'delivered', 'failed', 'cancelled'));
    END IF;
END;
$$;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS send_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS not_before timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS hold_reason text CHECK (hold_reason IN ('send_at', 'quiet_hours'));
ALTER TABLE messages ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS cancelled_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS cancel_reason text;
CREATE INDEX IF NOT EXISTS messages_scheduled_idx ON messages (not_before) WHERE status = 'scheduled';
-- The account's quiet hours (allowed sending windows; NULL = send at any time), as
-- docs/api.md "Quiet hours" shows it: {"time_zone", "windows": {"mon": [["09:00", "21:00"]], ...},
-- "exempt": ["otp", ...]}.
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS quiet_hours jsonb;
-- v7: sending caps and queue control (docs/api.md "Sending caps" and "Queue control").
-- daily_send_limit / monthly_send_limit: messages the account may have accepted per UTC day /
-- UTC calendar month (NULL: no cap); per_recipient_hour_limit: messages to one number in any
-- rolling hour (NULL: the gateway's RELAYGATE_RECIPIENT_HOURLY_LIMIT). The caps count rows of
-- messages through the existing indexes (account_id, id) and (account_id, to_number, id): ids
-- are ULIDs, so an id range is a time range. queue_paused_at: set while the account's queue is
-- paused (POST /v1/queue/pause): nothing of it is dispatched and sends answer queue_blocked.
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS daily_send_limit integer
    CHECK (daily_send_limit BETWEEN 1 AND 100000000);
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS monthly_send_limit integer
    CHECK (monthly_send_limit BETWEEN 1 AND 1000000000);
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS per_recipient_hour_limit integer
    CHECK (per_recipient_hour_limit BETWEEN 1 AND 1000000);
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS queue_paused_at timestamptz;
-- The new scope queue.manage (POST /v1/queue/pause|resume) is granted to the tokens that held
-- devices.manage when the database is upgraded to v7 (only then: later tokens get what they ask).
DO $$
BEGIN
    IF (SELECT version FROM schema_version) < 7 THEN
        UPDATE access_tokens SET scopes = array_append(scopes, 'queue.manage')
        WHERE 'devices.manage' = ANY (scopes) AND NOT 'queue.manage' = ANY (scopes);
    END IF;
END
$$;
-- v7: SIM selection per relay (docs/api.md "SIMs"): sim_policy picks the SIM of a message that
-- names none; sim_limits holds daily limits per SIM slot as a JSON object ({"0": 200, "1": 500}).
ALTER TABLE devices ADD COLUMN IF NOT EXISTS sim_policy text NOT NULL DEFAULT 'default'
    CHECK (sim_policy IN ('default', 'round_robin', 'least_used'));
ALTER TABLE devices ADD COLUMN IF NOT EXISTS sim_limits jsonb NOT NULL DEFAULT '{}';
-- Scheduled messages of an account, counted by GET /v1/queue.
CREATE INDEX IF NOT EXISTS messages_scheduled_account_idx ON messages (account_id) WHERE status = 'scheduled';
-- v7: list sends (docs/api.md, "Queue a recipient list"). A batch is one queued list: every
-- number its own message (kind 'list', batch_id set). list_id has no foreign key: deleting the
-- list later leaves its batches readable. completed_at is set, with the batch.completed event,
-- in the transaction that finishes its last item. The dispatch loop reads a batch's queued
-- items into the scheduler in chunks along messages_batch_idx.
CREATE TABLE IF NOT EXISTS batches (
    id           text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    list_id      text NOT NULL,
    total        integer NOT NULL,
    skipped      integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    completed_at timestamptz,
    cancelled_at timestamptz
);
CREATE INDEX IF NOT EXISTS batches_account_idx ON batches (account_id, id);
CREATE INDEX IF NOT EXISTS batches_open_idx ON batches (id) WHERE completed_at IS NULL;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS batch_id text;
CREATE INDEX IF NOT EXISTS messages_batch_idx ON messages (batch_id, id) WHERE batch_id IS NOT NULL;
-- A list queued with send_at: its items wait as 'scheduled' until not_before (the feed
-- releases them in one statement; HeldMessages leaves list items alone).
ALTER TABLE batches ADD COLUMN IF NOT EXISTS not_before timestamptz;
-- v7: inbound SMS, received by relays of both kinds (protocol v1.1 `inbound`, the SMSGate app's
-- `sms:received` webhook). (device_id, relay_message_id) de-duplicates a relay's retries;
-- in_reply_to is the latest message the account sent to that number before (the thread).
CREATE TABLE IF NOT EXISTS inbound_messages (
    id                text PRIMARY KEY,
    account_id        text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id         text NOT NULL,
    relay_message_id  text NOT NULL,
    from_number       text NOT NULL,
    body              text NOT NULL,
    sim_slot          smallint,
    received_at       timestamptz NOT NULL,
    stored_at         timestamptz NOT NULL DEFAULT now(),
    opt_action        text CHECK (opt_action IN ('opted_out', 'opted_in')),
    in_reply_to       text,
    UNIQUE (device_id, relay_message_id)
);
CREATE INDEX IF NOT EXISTS inbound_messages_account_idx ON inbound_messages (account_id, id);
CREATE INDEX IF NOT EXISTS inbound_messages_from_idx ON inbound_messages (account_id, from_number, id);
-- v7: dashboard sign-in sessions (gateway/dashboard/sessions.py). Only the SHA-256 of the session id
-- is stored; a session ends with its token (revoked token: no row joins), on sign-out (row deleted),
-- after the idle timeout (last_seen_at) or at expires_at.
CREATE TABLE IF NOT EXISTS dashboard_sessions (
    id_hash       bytea PRIMARY KEY,
    token_id      text NOT NULL REFERENCES access_tokens (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dashboard_sessions_last_seen_idx ON dashboard_sessions (last_seen_at);
-- v8: a list send writes up to 100,000 messages and a CSV import up to 200,000 recipients in
-- one statement; the foreign keys from messages and recipients to accounts cost an index lookup
-- and a row lock per row written (~18 % of queueing a list, ~11 % of an import, bench/README.md
-- "List sends (S6)"). Accounts are never deleted (no API or CLI command does), and every
-- account_id written is the authenticated account's own, so these two are dropped: deleting an
-- account by hand must now delete its messages and recipients first.
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_account_id_fkey;
ALTER TABLE recipients DROP CONSTRAINT IF EXISTS recipients_account_id_fkey;
-- v8: search_grams also holds the distinct characters of name_key (1-grams), so that 1- and
-- 2-character name searches can use the GIN index too (gateway.recipients.search); the rows
-- written before get theirs here, once.
DO $$
BEGIN
    IF (SELECT version FROM schema_version) < 8 THEN
        UPDATE recipients SET search_grams = search_grams || ARRAY(
            SELECT DISTINCT c FROM regexp_split_to_table(name_key, '') AS c WHERE c <> ' ')
        WHERE name_key <> '';
    END IF;
END
$$;

-- v8: batched webhook delivery, opt-in per endpoint (NULL = one event per request).
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS batch_max_events integer;
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS batch_max_wait_ms integer;

-- The webhook dispatcher's log of a batch of finished attempts (store/webhooks.py): each
-- delivery's new state and its attempt row, in one statement. A function declared with a
-- generic plan, so that its query is planned once per connection: as a plain statement
-- PostgreSQL planned it again at every call (its plan for a batch of one or two always looks
-- cheaper than a generic one), ~120 us of the server's CPU each time, about what running it
-- costs. Its lookups are by primary key, so no statistics can make that plan a bad one.
CREATE OR REPLACE FUNCTION relaygate_record_attempts(
    p_delivery_ids text[], p_statuses text[], p_next_attempts timestamptz[], p_started timestamptz[],
    p_triggers text[], p_durations integer[], p_http_statuses integer[], p_errors text[],
    p_excerpts text[], p_outcomes text[]
) RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    WITH finished AS (
        SELECT * FROM unnest(p_delivery_ids, p_statuses, p_next_attempts, p_started, p_triggers,
                             p_durations, p_http_statuses, p_errors, p_excerpts, p_outcomes)
            AS f(delivery_id, status, next_attempt_at, started_at, trigger, duration_ms, http_status,
                 error, response_excerpt, outcome)
    ), updated AS (
        UPDATE webhook_deliveries d SET attempts = d.attempts + 1, status = f.status,
            next_attempt_at = f.next_attempt_at, last_attempt_at = f.started_at, manual = false
        FROM finished f WHERE d.id = f.delivery_id
        RETURNING d.id, d.attempts
    )
    INSERT INTO webhook_attempts (delivery_id, attempt, trigger, started_at, duration_ms, http_status,
                                  error, response_excerpt, outcome, next_attempt_at)
    SELECT u.id, u.attempts, f.trigger, f.started_at, f.duration_ms, f.http_status, f.error,
           f.response_excerpt, f.outcome, f.next_attempt_at
    FROM updated u JOIN finished f ON f.delivery_id = u.id;
END;
$$;

INSERT INTO schema_version (singleton, version) VALUES (true, 8)
ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, applied_at = now()
WHERE schema_version.version < EXCLUDED.version;
