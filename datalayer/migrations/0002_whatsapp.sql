-- WhatsApp (Baileys-style) auth state: one creds document per session and the
-- signal keys by (session, type, id), plus the bookkeeping of expired-key cleanup.

CREATE TABLE IF NOT EXISTS whatsapp_auth (
    session_id text PRIMARY KEY
        CONSTRAINT whatsapp_auth_session_id_format CHECK (session_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    creds jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS whatsapp_keys (
    session_id text NOT NULL
        CONSTRAINT whatsapp_keys_session_id_format CHECK (session_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    key_type text NOT NULL CONSTRAINT whatsapp_keys_key_type_not_empty CHECK (key_type <> ''),
    key_id text NOT NULL,
    value jsonb NOT NULL,
    -- NULL: never expires (identity keys, app-state-sync keys).
    expires_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- The upsert key of AuthStateStore.set_keys (ON CONFLICT names these columns).
    CONSTRAINT whatsapp_keys_pkey PRIMARY KEY (session_id, key_type, key_id)
);

-- Cleanup and health look up expired keys; keys that never expire stay out of the index.
CREATE INDEX IF NOT EXISTS whatsapp_keys_expires_at_idx
    ON whatsapp_keys (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS whatsapp_cleanup_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    cutoff timestamptz NOT NULL,
    deleted bigint NOT NULL DEFAULT 0,
    batches integer NOT NULL DEFAULT 0,
    batch_size integer NOT NULL,
    duration_ms double precision NOT NULL,
    -- NULL on success; the error type when the run stopped half-way.
    error text
);

CREATE INDEX IF NOT EXISTS whatsapp_cleanup_runs_finished_at_idx
    ON whatsapp_cleanup_runs (finished_at DESC);
