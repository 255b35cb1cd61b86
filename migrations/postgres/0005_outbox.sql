-- Outbound mail: the outbox a worker delivers from, the audit of every send, and the
-- idempotency keys that make a retried request return its first answer.

-- The whole message is built, Message-ID included, when the send is accepted, so that a
-- redelivery after a crash is the same message.
CREATE TABLE outbox (
    id              UUID PRIMARY KEY,
    org_id          UUID NOT NULL REFERENCES orgs (id),
    mailbox_id      UUID NOT NULL REFERENCES mailboxes (id),
    mail_id         UUID NOT NULL REFERENCES mail_messages (id),
    envelope_from   TEXT NOT NULL,
    recipients      JSONB NOT NULL,
    raw             BYTEA NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'queued';

CREATE TABLE send_audit (
    id         UUID PRIMARY KEY,
    org_id     UUID NOT NULL REFERENCES orgs (id),
    mailbox_id UUID NOT NULL REFERENCES mailboxes (id),
    mail_id    UUID,
    outcome    TEXT NOT NULL,
    recipients JSONB NOT NULL,
    detail     TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX send_audit_org ON send_audit (org_id, id);

-- A key is scoped to its caller and operation; the answer is replayed for 24 hours.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    status       BIGINT NOT NULL,
    response     JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
