-- Outbound mail: the outbox a worker delivers from, the audit of every send, and the
-- idempotency keys that make a retried request return its first answer.

-- The whole message is built, Message-ID included, when the send is accepted, so that a
-- redelivery after a crash is the same message.
CREATE TABLE outbox (
    id              BLOB PRIMARY KEY NOT NULL,
    org_id          BLOB NOT NULL REFERENCES orgs (id),
    mailbox_id      BLOB NOT NULL REFERENCES mailboxes (id),
    mail_id         BLOB NOT NULL REFERENCES mail_messages (id),
    envelope_from   TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'queued';

CREATE TABLE send_audit (
    id         BLOB PRIMARY KEY NOT NULL,
    org_id     BLOB NOT NULL REFERENCES orgs (id),
    mailbox_id BLOB NOT NULL REFERENCES mailboxes (id),
    mail_id    BLOB,
    outcome    TEXT NOT NULL,
    recipients TEXT NOT NULL,
    detail     TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX send_audit_org ON send_audit (org_id, id);

-- A key is scoped to its caller and operation; the answer is replayed for 24 hours.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
