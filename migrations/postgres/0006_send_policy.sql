-- What an org controls of what its mailboxes send: per-mailbox overrides of the send limits,
-- the refusals they caused, the anomalies found in the audit, and the queue of inbound mail
-- to deliver to webhook channels.

CREATE TABLE mailbox_quotas (
    mailbox_id UUID PRIMARY KEY REFERENCES mailboxes (id),
    org_id     UUID NOT NULL REFERENCES orgs (id),
    per_minute BIGINT,
    per_hour   BIGINT,
    per_day    BIGINT,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Limits count the mailbox's accepted sends in each window.
CREATE INDEX send_audit_mailbox ON send_audit (mailbox_id, outcome, created_at);

CREATE TABLE rate_limit_hits (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES orgs (id),
    mailbox_id  UUID NOT NULL REFERENCES mailboxes (id),
    caller      TEXT NOT NULL,
    period      TEXT NOT NULL,
    limit_value BIGINT NOT NULL,
    sent        BIGINT NOT NULL,
    retry_after BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX rate_limit_hits_mailbox ON rate_limit_hits (mailbox_id, created_at);

CREATE TABLE anomalies (
    id         UUID PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES orgs (id),
    mailbox_id UUID NOT NULL REFERENCES mailboxes (id),
    rule       TEXT NOT NULL,
    summary    TEXT NOT NULL,
    evidence   JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX anomalies_org ON anomalies (org_id, id);
CREATE INDEX anomalies_rule ON anomalies (mailbox_id, rule, created_at);

-- A webhook channel signs what it delivers with its secret, so the gateway keeps that secret;
-- an email channel's secret is only ever compared, so only its hash is kept.
ALTER TABLE channels ADD COLUMN signing_secret TEXT;

CREATE TABLE webhook_deliveries (
    id              UUID PRIMARY KEY,
    org_id          UUID NOT NULL REFERENCES orgs (id),
    channel_id      UUID NOT NULL REFERENCES channels (id),
    mail_id         UUID NOT NULL REFERENCES mail_messages (id),
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_status     BIGINT,
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (channel_id, mail_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'queued';
CREATE INDEX webhook_deliveries_channel ON webhook_deliveries (channel_id, id);
