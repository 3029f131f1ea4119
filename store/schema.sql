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

INSERT INTO schema_version (singleton, version) VALUES (true, 1)
ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, applied_at = now()
WHERE schema_version.version < EXCLUDED.version;
