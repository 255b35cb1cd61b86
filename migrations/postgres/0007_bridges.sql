-- Bridges link a room to a Telegram chat. Only a setup token made by a room admin (or a room
-- admin's link call) creates one; what arrives from Telegram never changes a bridge.

CREATE TABLE bridges (
    id             UUID PRIMARY KEY,
    org_id         UUID NOT NULL REFERENCES orgs (id),
    room_id        UUID NOT NULL REFERENCES rooms (id),
    kind           TEXT NOT NULL,
    chat_id        BIGINT NOT NULL,
    thread_id      BIGINT,
    -- The room member that messages from the chat are posted as.
    member_id      UUID NOT NULL REFERENCES room_members (id),
    -- The room event after which messages are relayed to the chat.
    relay_cursor   TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ
);
CREATE INDEX bridges_room ON bridges (room_id, id);
CREATE INDEX bridges_chat ON bridges (chat_id) WHERE revoked_at IS NULL;

CREATE TABLE bridge_setup_tokens (
    token_hash BYTEA PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES orgs (id),
    room_id    UUID NOT NULL REFERENCES rooms (id),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row per bot: which instance polls it (a lease), and the next update to read.
CREATE TABLE telegram_bots (
    bot_id        BIGINT PRIMARY KEY,
    holder        TEXT,
    lease_until   TIMESTAMPTZ,
    update_offset BIGINT NOT NULL DEFAULT 0
);
