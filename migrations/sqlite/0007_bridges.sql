-- Bridges link a room to a Telegram chat. Only a setup token made by a room admin (or a room
-- admin's link call) creates one; what arrives from Telegram never changes a bridge.

CREATE TABLE bridges (
    id             BLOB PRIMARY KEY NOT NULL,
    org_id         BLOB NOT NULL REFERENCES orgs (id),
    room_id        BLOB NOT NULL REFERENCES rooms (id),
    kind           TEXT NOT NULL,
    chat_id        INTEGER NOT NULL,
    thread_id      INTEGER,
    -- The room member that messages from the chat are posted as.
    member_id      BLOB NOT NULL REFERENCES room_members (id),
    -- The room event after which messages are relayed to the chat.
    relay_cursor   TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    revoked_at     TEXT
);
CREATE INDEX bridges_room ON bridges (room_id, id);
CREATE INDEX bridges_chat ON bridges (chat_id) WHERE revoked_at IS NULL;

CREATE TABLE bridge_setup_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    org_id     BLOB NOT NULL REFERENCES orgs (id),
    room_id    BLOB NOT NULL REFERENCES rooms (id),
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    created_at TEXT NOT NULL
);

-- One row per bot: which instance polls it (a lease), and the next update to read.
CREATE TABLE telegram_bots (
    bot_id        INTEGER PRIMARY KEY NOT NULL,
    holder        TEXT,
    lease_until   TEXT,
    update_offset INTEGER NOT NULL DEFAULT 0
);
