-- Orgs, their app tokens, agents and agent keys.
-- Ids are UUIDv7 stored as 16-byte blobs, so ordering by id is ordering by creation time.
-- Secrets are stored only as SHA-256 hashes; `prefix` is the harmless start shown in lists.

CREATE TABLE orgs (
    id         BLOB PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE app_tokens (
    id           BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES orgs (id),
    label        TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX app_tokens_org ON app_tokens (org_id, id);

CREATE TABLE agents (
    id          BLOB PRIMARY KEY NOT NULL,
    org_id      BLOB NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    description TEXT,
    metadata    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);
CREATE UNIQUE INDEX agents_live_name ON agents (org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX agents_org ON agents (org_id, id);

CREATE TABLE agent_keys (
    id           BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES orgs (id),
    agent_id     BLOB NOT NULL REFERENCES agents (id),
    label        TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     BLOB NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX agent_keys_agent ON agent_keys (agent_id, id);
