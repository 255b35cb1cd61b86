-- Mailboxes, their channels, and mail messages (inbound now; outbound with the outbox).
-- An address routes to one live mailbox across the whole gateway.

CREATE TABLE mailboxes (
    id           BLOB PRIMARY KEY NOT NULL,
    org_id       BLOB NOT NULL REFERENCES orgs (id),
    agent_id     BLOB REFERENCES agents (id),
    address      TEXT NOT NULL,
    display_name TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    deleted_at   TEXT
);
CREATE UNIQUE INDEX mailboxes_live_address ON mailboxes (address) WHERE deleted_at IS NULL;
CREATE INDEX mailboxes_agent ON mailboxes (agent_id, id);

-- A channel's secret is a credential for its inbound endpoint; only its hash is kept.
CREATE TABLE channels (
    id          BLOB PRIMARY KEY NOT NULL,
    org_id      BLOB NOT NULL REFERENCES orgs (id),
    mailbox_id  BLOB NOT NULL REFERENCES mailboxes (id),
    kind        TEXT NOT NULL,
    url         TEXT,
    prefix      TEXT NOT NULL,
    secret_hash BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX channels_mailbox ON channels (mailbox_id, id);

CREATE TABLE mail_messages (
    id            BLOB PRIMARY KEY NOT NULL,
    org_id        BLOB NOT NULL REFERENCES orgs (id),
    mailbox_id    BLOB NOT NULL REFERENCES mailboxes (id),
    direction     TEXT NOT NULL,
    status        TEXT NOT NULL,
    message_id    TEXT,
    in_reply_to   TEXT,
    refs          TEXT NOT NULL,
    from_addr     TEXT,
    to_addrs      TEXT NOT NULL,
    cc_addrs      TEXT NOT NULL,
    subject       TEXT,
    body_text     TEXT,
    body_html     TEXT,
    attachments   TEXT NOT NULL,
    headers       TEXT NOT NULL,
    parse_warning TEXT,
    raw_size      INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);
-- The same Message-ID delivered twice to a mailbox is one message.
CREATE UNIQUE INDEX mail_messages_once ON mail_messages (mailbox_id, direction, message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX mail_messages_mailbox ON mail_messages (mailbox_id, id);
