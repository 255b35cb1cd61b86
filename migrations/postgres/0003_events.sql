-- The event log: every watchable state change writes a row here in its own transaction.
-- Ids come from a sequence, which is not commit order, so readers read only rows whose writing
-- transaction (`xid`) is older than every transaction still in flight (pg_snapshot_xmin) and
-- order by (xid, id): a row that commits later always sorts after every row already read.
CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    xid         XID8 NOT NULL DEFAULT pg_current_xact_id(),
    org_id     UUID NOT NULL,
    room_id    UUID,
    agent_id   UUID,
    kind       TEXT NOT NULL,
    data       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_room ON events (room_id, ((xid::text)::bigint), id) WHERE room_id IS NOT NULL;
CREATE INDEX events_agent ON events (agent_id, ((xid::text)::bigint), id) WHERE agent_id IS NOT NULL;
CREATE INDEX events_org_kind ON events (org_id, kind, ((xid::text)::bigint), id);
CREATE INDEX events_created ON events (created_at);

-- The position below which events have been pruned; one row.
CREATE TABLE event_floor (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    xid       BIGINT NOT NULL,
    id        BIGINT NOT NULL
);
INSERT INTO event_floor (singleton, xid, id) VALUES (1, 0, 0);

-- Single-use tickets that let a browser's EventSource open a stream without headers.
CREATE TABLE stream_tickets (
    ticket_hash BYTEA PRIMARY KEY,
    org_id      UUID NOT NULL,
    kind        TEXT NOT NULL,
    subject_id  UUID NOT NULL,
    credential  UUID NOT NULL,
    room_id     UUID,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
