//! Mailboxes, channels and mail messages.

use chrono::{DateTime, Utc};
use kapable_sdk::comms::types::{Attachment, Channel, MailMessage, Mailbox};
use sqlx::types::Json;
use uuid::Uuid;

use super::events::append_events;
use super::{NewEvent, Store, StoreError, now, on_pool};

/// A mailbox as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailboxRow {
    /// The mailbox's id.
    pub id: Uuid,
    /// Its org.
    pub org_id: Uuid,
    /// Its owner agent.
    pub agent_id: Option<Uuid>,
    address: String,
    display_name: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<MailboxRow> for Mailbox {
    fn from(row: MailboxRow) -> Self {
        Mailbox {
            id: row.id,
            org_id: row.org_id,
            agent_id: row.agent_id,
            address: row.address,
            display_name: row.display_name,
            created_at: row.created_at,
        }
    }
}

/// A channel as stored, without its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChannelRow {
    id: Uuid,
    mailbox_id: Uuid,
    kind: String,
    url: Option<String>,
    prefix: String,
    created_at: DateTime<Utc>,
}

impl From<ChannelRow> for Channel {
    fn from(row: ChannelRow) -> Self {
        let inbound_path =
            (row.kind == "email").then(|| format!("/v1/channels/{}/inbound", row.id));
        Channel {
            id: row.id,
            mailbox_id: row.mailbox_id,
            kind: row.kind,
            url: row.url,
            inbound_path,
            prefix: row.prefix,
            created_at: row.created_at,
        }
    }
}

/// A mail message as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailRow {
    id: Uuid,
    /// The message's mailbox.
    pub mailbox_id: Uuid,
    direction: String,
    status: String,
    message_id: Option<String>,
    in_reply_to: Option<String>,
    refs: Json<Vec<String>>,
    from_addr: Option<String>,
    to_addrs: Json<Vec<String>>,
    cc_addrs: Json<Vec<String>>,
    subject: Option<String>,
    body_text: Option<String>,
    body_html: Option<String>,
    attachments: Json<Vec<Attachment>>,
    headers: Json<serde_json::Value>,
    parse_warning: Option<String>,
    created_at: DateTime<Utc>,
}

impl MailRow {
    /// The wire form with the headers, as `get_message` shows it.
    pub fn with_headers(self) -> MailMessage {
        let headers = self.headers.0.clone();
        MailMessage { headers: Some(headers), ..MailMessage::from(self) }
    }
}

impl From<MailRow> for MailMessage {
    fn from(row: MailRow) -> Self {
        MailMessage {
            id: row.id,
            mailbox_id: row.mailbox_id,
            direction: row.direction,
            status: row.status,
            message_id: row.message_id,
            in_reply_to: row.in_reply_to,
            references: row.refs.0,
            from: row.from_addr,
            to: row.to_addrs.0,
            cc: row.cc_addrs.0,
            subject: row.subject,
            body_text: row.body_text,
            body_html: row.body_html,
            attachments: row.attachments.0,
            headers: None,
            parse_warning: row.parse_warning,
            created_at: row.created_at,
        }
    }
}

/// A received message about to be stored.
#[derive(Debug)]
pub struct NewInbound {
    /// The mailbox.
    pub mailbox: MailboxRow,
    /// What the parser kept.
    pub parsed: crate::mail::inbound::Parsed,
    /// The raw message's size in bytes.
    pub raw_size: usize,
}

macro_rules! mailbox_columns {
    () => {
        "id, org_id, agent_id, address, display_name, created_at"
    };
}

macro_rules! channel_columns {
    () => {
        "id, mailbox_id, kind, url, prefix, created_at"
    };
}

macro_rules! mail_columns {
    () => {
        "id, mailbox_id, direction, status, message_id, in_reply_to, refs, from_addr, to_addrs, \
         cc_addrs, subject, body_text, body_html, attachments, headers, parse_warning, created_at"
    };
}

impl Store {
    /// Creates the mailbox, or updates the org's live one with this address. `None` when the
    /// address belongs to a live mailbox of another org.
    pub async fn upsert_mailbox(
        &self,
        org_id: Uuid,
        agent_id: Option<Uuid>,
        address: &str,
        display_name: Option<&str>,
    ) -> Result<Option<(MailboxRow, bool)>, StoreError> {
        let id = Uuid::now_v7();
        let sql = concat!(
            "INSERT INTO mailboxes (id, org_id, agent_id, address, display_name, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (address) WHERE deleted_at IS NULL DO UPDATE SET \
             agent_id = COALESCE(excluded.agent_id, mailboxes.agent_id), \
             display_name = COALESCE(excluded.display_name, mailboxes.display_name), \
             updated_at = excluded.updated_at WHERE mailboxes.org_id = excluded.org_id RETURNING ",
            mailbox_columns!()
        );
        let row: Option<MailboxRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .bind(org_id)
            .bind(agent_id)
            .bind(address)
            .bind(display_name)
            .bind(now())
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|row| {
            let created = row.id == id;
            (row, created)
        }))
    }

    /// The org's live mailbox with this id.
    pub async fn mailbox(&self, org_id: Uuid, id: Uuid) -> Result<Option<MailboxRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mailbox_columns!(),
            " FROM mailboxes WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// The live mailboxes of an agent of the org, oldest first.
    pub async fn agent_mailboxes(
        &self,
        org_id: Uuid,
        agent_id: Uuid,
    ) -> Result<Vec<MailboxRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mailbox_columns!(),
            " FROM mailboxes WHERE org_id = $1 AND agent_id = $2 AND deleted_at IS NULL ORDER BY id"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(agent_id)
            .fetch_all(pool)
            .await)?)
    }

    /// Soft-deletes the org's mailbox; false when it had none with this id.
    pub async fn delete_mailbox(&self, org_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let sql = "UPDATE mailboxes SET deleted_at = $3 \
                   WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL";
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(org_id)
            .bind(id)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// Stores a channel of the mailbox with its secret's hash, and for a webhook channel the
    /// secret it signs with.
    pub async fn create_channel(
        &self,
        mailbox: &MailboxRow,
        kind: &str,
        url: Option<&str>,
        secret: &super::NewCredential,
        signing_secret: Option<&str>,
    ) -> Result<ChannelRow, StoreError> {
        let sql = concat!(
            "INSERT INTO channels (id, org_id, mailbox_id, kind, url, prefix, secret_hash, \
             created_at, signing_secret) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
            channel_columns!()
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(secret.id)
            .bind(mailbox.org_id)
            .bind(mailbox.id)
            .bind(kind)
            .bind(url)
            .bind(&secret.prefix)
            .bind(&secret.hash[..])
            .bind(now())
            .bind(signing_secret)
            .fetch_one(pool)
            .await)?)
    }

    /// The mailbox's live channels, oldest first.
    pub async fn channels(&self, mailbox_id: Uuid) -> Result<Vec<ChannelRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            channel_columns!(),
            " FROM channels WHERE mailbox_id = $1 AND revoked_at IS NULL ORDER BY id"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(mailbox_id).fetch_all(pool).await)?)
    }

    /// The live channel with this secret hash: (channel, org, mailbox, kind, stored hash).
    pub async fn find_channel(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(Uuid, Uuid, Uuid, String, Vec<u8>)>, StoreError> {
        let sql = "SELECT c.id, c.org_id, c.mailbox_id, c.kind, c.secret_hash FROM channels c \
                   JOIN mailboxes m ON m.id = c.mailbox_id \
                   WHERE c.secret_hash = $1 AND c.revoked_at IS NULL AND m.deleted_at IS NULL";
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(&hash[..]).fetch_optional(pool).await)?)
    }

    /// Stores a received message, once per `Message-ID` and mailbox, announces it to the
    /// mailbox's agent (`mail_message`) and queues it for the mailbox's webhook channels. Returns the stored message and whether it is new.
    pub async fn store_inbound(&self, inbound: NewInbound) -> Result<(MailRow, bool), StoreError> {
        let insert = concat!(
            "INSERT INTO mail_messages (id, org_id, mailbox_id, direction, status, message_id, \
             in_reply_to, refs, from_addr, to_addrs, cc_addrs, subject, body_text, body_html, \
             attachments, headers, parse_warning, raw_size, created_at) VALUES ($1, $2, $3, \
             'inbound', 'received', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17) ON CONFLICT (mailbox_id, direction, message_id) WHERE message_id IS NOT NULL \
             DO NOTHING RETURNING ",
            mail_columns!()
        );
        let existing = concat!(
            "SELECT ",
            mail_columns!(),
            " FROM mail_messages WHERE mailbox_id = $1 AND direction = 'inbound' \
             AND message_id = $2"
        );
        let (mailbox, p) = (&inbound.mailbox, &inbound.parsed);
        let mut events = Vec::new();
        let stored = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            let row: Option<MailRow> = sqlx::query_as(insert)
                .bind(Uuid::now_v7())
                .bind(mailbox.org_id)
                .bind(mailbox.id)
                .bind(&p.message_id)
                .bind(&p.in_reply_to)
                .bind(Json(&p.references))
                .bind(&p.from)
                .bind(Json(&p.to))
                .bind(Json(&p.cc))
                .bind(&p.subject)
                .bind(&p.body_text)
                .bind(&p.body_html)
                .bind(Json(&p.attachments))
                .bind(Json(&p.headers))
                .bind(&p.warning)
                .bind(i64::try_from(inbound.raw_size).unwrap_or(i64::MAX))
                .bind(now())
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                let first: MailRow = sqlx::query_as(existing)
                    .bind(mailbox.id)
                    .bind(&p.message_id)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok((first, false));
            };
            if let Some(agent_id) = mailbox.agent_id {
                let message = MailMessage::from(row.clone());
                events.push(NewEvent::agent(mailbox.org_id, agent_id, "mail_message", &message));
            }
            let hooks: Vec<(Uuid,)> = sqlx::query_as(super::webhooks::LIVE_HOOKS)
                .bind(mailbox.id)
                .fetch_all(&mut *tx)
                .await?;
            for (channel_id,) in hooks {
                sqlx::query(super::webhooks::ENQUEUE)
                    .bind(Uuid::now_v7())
                    .bind(mailbox.org_id)
                    .bind(channel_id)
                    .bind(row.id)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
            }
            append_events!(self, tx, &events);
            tx.commit().await?;
            (row, true)
        });
        self.announce(&events);
        Ok(stored)
    }

    /// One page of the mailbox's messages, newest first: before `before`, at or after `since`.
    pub async fn mail_messages(
        &self,
        mailbox_id: Uuid,
        before: Option<Uuid>,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<MailRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mail_columns!(),
            " FROM mail_messages WHERE mailbox_id = $1 AND ($2 IS NULL OR id < $2) \
             AND ($3 IS NULL OR created_at >= $3) ORDER BY id DESC LIMIT $4"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(mailbox_id)
            .bind(before)
            .bind(since)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// The org's mail message with this id.
    pub async fn mail_message(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<Option<MailRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            mail_columns!(),
            " FROM mail_messages WHERE org_id = $1 AND id = $2"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// The `References` of the mailbox's message with this Message-ID, to thread a reply.
    pub async fn thread_of(
        &self,
        mailbox_id: Uuid,
        message_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let sql =
            "SELECT refs FROM mail_messages WHERE mailbox_id = $1 AND message_id = $2 LIMIT 1";
        let row: Option<(Json<Vec<String>>,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(mailbox_id)
            .bind(message_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(refs,)| refs.0))
    }
}
