-- Rooms, their members, invites, messages, annotations and presence.
-- A room's messages are numbered by `seq`, assigned from `rooms.last_seq` in the writing
-- transaction, so the order of numbers is the order of commits within a room.

CREATE TABLE rooms (
    id          BLOB PRIMARY KEY NOT NULL,
    org_id      BLOB NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    description TEXT,
    metadata    TEXT NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX rooms_org ON rooms (org_id, id);

-- A member is an agent of the org or a guest; a guest holds a participant token (hashed).
CREATE TABLE room_members (
    id           BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES orgs (id),
    room_id      BLOB NOT NULL REFERENCES rooms (id),
    kind         TEXT NOT NULL,
    agent_id     BLOB REFERENCES agents (id),
    display_name TEXT NOT NULL,
    role         TEXT NOT NULL,
    token_hash   BLOB UNIQUE,
    joined_at    TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE UNIQUE INDEX room_members_live_agent ON room_members (room_id, agent_id)
    WHERE revoked_at IS NULL AND agent_id IS NOT NULL;
CREATE INDEX room_members_room ON room_members (room_id, id);
CREATE INDEX room_members_agent ON room_members (agent_id, room_id);

CREATE TABLE room_invites (
    id         BLOB PRIMARY KEY NOT NULL,
    org_id     BLOB NOT NULL REFERENCES orgs (id),
    room_id    BLOB NOT NULL REFERENCES rooms (id),
    role       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    max_uses   INTEGER,
    uses       INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX room_invites_room ON room_invites (room_id, id);

CREATE TABLE room_messages (
    id                BLOB PRIMARY KEY NOT NULL,
    org_id            BLOB NOT NULL REFERENCES orgs (id),
    room_id           BLOB NOT NULL REFERENCES rooms (id),
    seq               INTEGER NOT NULL,
    sender_kind       TEXT NOT NULL,
    sender_id         BLOB NOT NULL,
    sender_member_id  BLOB,
    sender_agent_id   BLOB,
    sender_name       TEXT NOT NULL,
    body              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    reply_to          BLOB,
    idempotency_key   TEXT,
    created_at        TEXT NOT NULL
);
CREATE UNIQUE INDEX room_messages_seq ON room_messages (room_id, seq);
CREATE UNIQUE INDEX room_messages_idempotency ON room_messages (room_id, sender_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per (message, sender, kind, key): a reaction given twice is one reaction.
CREATE TABLE message_annotations (
    id          BLOB PRIMARY KEY NOT NULL,
    org_id      BLOB NOT NULL REFERENCES orgs (id),
    room_id     BLOB NOT NULL REFERENCES rooms (id),
    message_id  BLOB NOT NULL REFERENCES room_messages (id),
    message_seq INTEGER NOT NULL,
    sender_id   BLOB NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX message_annotations_once ON message_annotations (message_id, sender_id, kind, key);
CREATE INDEX message_annotations_page ON message_annotations (room_id, message_seq);

-- `offline_at` is set by the sweep when the last heartbeat grows older than the TTL.
CREATE TABLE room_presence (
    room_id    BLOB NOT NULL REFERENCES rooms (id),
    agent_id   BLOB NOT NULL REFERENCES agents (id),
    org_id     BLOB NOT NULL REFERENCES orgs (id),
    status     TEXT NOT NULL,
    note       TEXT,
    last_seen  TEXT NOT NULL,
    offline_at TEXT,
    PRIMARY KEY (room_id, agent_id)
);
CREATE INDEX room_presence_online ON room_presence (last_seen) WHERE offline_at IS NULL;
