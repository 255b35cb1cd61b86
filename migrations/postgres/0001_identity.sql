-- Orgs, their app tokens, agents and agent keys.
-- Ids are UUIDv7, so ordering by id is ordering by creation time.
-- Secrets are stored only as SHA-256 hashes; `prefix` is the harmless start shown in lists.

CREATE TABLE orgs (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE app_tokens (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES orgs (id),
    label        TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX app_tokens_org ON app_tokens (org_id, id);

CREATE TABLE agents (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    description TEXT,
    metadata    JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX agents_live_name ON agents (org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX agents_org ON agents (org_id, id);

CREATE TABLE agent_keys (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES orgs (id),
    agent_id     UUID NOT NULL REFERENCES agents (id),
    label        TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX agent_keys_agent ON agent_keys (agent_id, id);
