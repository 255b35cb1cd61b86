-- The event log: every watchable state change writes a row here in its own transaction.
-- SQLite has one writer at a time, so `id` order is commit order: a reader that has seen id N
-- and asks for more never misses a row that commits later with a smaller id.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     BLOB NOT NULL,
    room_id    BLOB,
    agent_id   BLOB,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX events_room ON events (room_id, id) WHERE room_id IS NOT NULL;
CREATE INDEX events_agent ON events (agent_id, id) WHERE agent_id IS NOT NULL;
CREATE INDEX events_org_kind ON events (org_id, kind, id);
CREATE INDEX events_created ON events (created_at);

-- The position below which events have been pruned; one row.
CREATE TABLE event_floor (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    xid       INTEGER NOT NULL,
    id        INTEGER NOT NULL
);
INSERT INTO event_floor (singleton, xid, id) VALUES (1, 0, 0);

-- Single-use tickets that let a browser's EventSource open a stream without headers.
CREATE TABLE stream_tickets (
    ticket_hash BLOB PRIMARY KEY NOT NULL,
    org_id      BLOB NOT NULL,
    kind        TEXT NOT NULL,
    subject_id  BLOB NOT NULL,
    credential  BLOB NOT NULL,
    room_id     BLOB,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
