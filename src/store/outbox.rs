//! The outbox: accepted sends waiting for delivery, leased by one worker at a time.
//!
//! Accepting a send writes the outbound message, its outbox row, its audit row and its
//! idempotency key in one transaction, so an acknowledged send survives any crash. A worker
//! claims due rows with a lease (on Postgres with `SKIP LOCKED`, so instances never claim the
//! same row); a crash mid-delivery lets the lease expire and the row is tried again, with the
//! same Message-ID.

use chrono::{DateTime, Duration, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, MailRow, Store, StoreError, now, on_pool};

/// How long a claimed row is reserved for the worker that claimed it.
const LEASE: Duration = Duration::seconds(60);

/// A send about to be accepted.
#[derive(Debug)]
pub struct NewSend {
    /// The org.
    pub org_id: Uuid,
    /// The mailbox sending.
    pub mailbox_id: Uuid,
    /// The Message-ID, without brackets.
    pub message_id: String,
    /// The message it answers.
    pub in_reply_to: Option<String>,
    /// The thread so far.
    pub references: Vec<String>,
    /// The `From` header.
    pub from: String,
    /// `To` recipients as written.
    pub to: Vec<String>,
    /// `Cc` recipients as written.
    pub cc: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The text body.
    pub body_text: Option<String>,
    /// The HTML body.
    pub body_html: Option<String>,
    /// The envelope sender address.
    pub envelope_from: String,
    /// Every envelope recipient (To, Cc and Bcc).
    pub recipients: Vec<String>,
    /// The formatted message, as it will be sent.
    pub raw: Vec<u8>,
}

/// An idempotency key to record with the answer it gave.
#[derive(Debug)]
pub struct IdempotencyRecord {
    /// The caller and operation the key belongs to.
    pub scope: String,
    /// The key.
    pub key: String,
    /// A hash of the request, to tell a retry from a different request.
    pub request_hash: [u8; 32],
    /// The answer's status.
    pub status: u16,
    /// The answer.
    pub response: serde_json::Value,
}

/// A claimed outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    /// The row's id.
    pub id: Uuid,
    /// Its org.
    pub org_id: Uuid,
    /// The sending mailbox.
    pub mailbox_id: Uuid,
    /// The outbound message.
    pub mail_id: Uuid,
    /// The envelope sender.
    pub envelope_from: String,
    /// The envelope recipients.
    pub recipients: Json<Vec<String>>,
    /// The message as it is sent.
    pub raw: Vec<u8>,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// What a delivery attempt came to.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The relay accepted the message.
    Sent,
    /// Try again at this time.
    Deferred(DateTime<Utc>, String),
    /// Give up.
    Failed(String),
}

impl Store {
    /// A stored answer for this idempotency key, less than 24 hours old: (request hash,
    /// status, answer).
    pub async fn idempotent_answer(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<(Vec<u8>, i64, Json<serde_json::Value>)>, StoreError> {
        let sql = "SELECT request_hash, status, response FROM idempotency_keys \
                   WHERE scope = $1 AND key = $2 AND created_at > $3";
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(scope)
            .bind(key)
            .bind(now() - Duration::hours(24))
            .fetch_optional(pool)
            .await)?)
    }

    /// Accepts a send: the outbound message, its outbox row, its `accepted` audit row and its
    /// idempotency key, in one transaction. A key taken concurrently is a `Duplicate`.
    pub async fn accept_send(
        &self,
        send: &NewSend,
        key: Option<&IdempotencyRecord>,
        mail_id: Uuid,
    ) -> Result<MailRow, StoreError> {
        let message = "INSERT INTO mail_messages (id, org_id, mailbox_id, direction, status, \
             message_id, in_reply_to, refs, from_addr, to_addrs, cc_addrs, subject, body_text, \
             body_html, \
             attachments, headers, parse_warning, raw_size, created_at) VALUES ($1, $2, $3, \
             'outbound', 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, $15, \
             $16) RETURNING id, mailbox_id, direction, status, message_id, in_reply_to, refs, \
             from_addr, to_addrs, cc_addrs, subject, body_text, body_html, attachments, headers, \
             parse_warning, created_at";
        let outbox = "INSERT INTO outbox (id, org_id, mailbox_id, mail_id, envelope_from, \
                      recipients, raw, status, next_attempt_at, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $8)";
        let forget_key = "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 \
                          AND created_at <= $3";
        let remember_key = "INSERT INTO idempotency_keys (scope, key, request_hash, status, \
                            response, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
        let at = now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin_with(self.write_transaction()).await?;
            let row: MailRow = sqlx::query_as(message)
                .bind(mail_id)
                .bind(send.org_id)
                .bind(send.mailbox_id)
                .bind(&send.message_id)
                .bind(&send.in_reply_to)
                .bind(Json(&send.references))
                .bind(&send.from)
                .bind(Json(&send.to))
                .bind(Json(&send.cc))
                .bind(&send.subject)
                .bind(&send.body_text)
                .bind(&send.body_html)
                .bind(Json(Vec::<serde_json::Value>::new()))
                .bind(Json(serde_json::json!({})))
                .bind(i64::try_from(send.raw.len()).unwrap_or(i64::MAX))
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(outbox)
                .bind(Uuid::now_v7())
                .bind(send.org_id)
                .bind(send.mailbox_id)
                .bind(mail_id)
                .bind(&send.envelope_from)
                .bind(Json(&send.recipients))
                .bind(&send.raw)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            audit(
                &mut tx,
                send.org_id,
                send.mailbox_id,
                mail_id,
                "accepted",
                &send.recipients,
                None,
            )
            .await?;
            if let Some(key) = key {
                sqlx::query(forget_key)
                    .bind(&key.scope)
                    .bind(&key.key)
                    .bind(at - Duration::hours(24))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(remember_key)
                    .bind(&key.scope)
                    .bind(&key.key)
                    .bind(&key.request_hash[..])
                    .bind(i64::from(key.status))
                    .bind(Json(&key.response))
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            row
        }))
    }

    /// Claims up to `limit` due outbox rows for this worker.
    pub async fn claim_outbox(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let due = "SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $2 \
                   AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_attempt_at LIMIT $3";
        let columns = "id, org_id, mailbox_id, mail_id, envelope_from, recipients, raw, attempts";
        let at = now();
        let rows = match &self.db {
            Db::Sqlite(pool) => {
                let sql = format!(
                    "UPDATE outbox SET lease_until = $1 WHERE id IN ({due}) RETURNING {columns}"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(at + LEASE)
                    .bind(at)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                let sql = format!(
                    "UPDATE outbox SET lease_until = $1 WHERE id IN ({due} FOR UPDATE SKIP LOCKED) \
                     RETURNING {columns}"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(at + LEASE)
                    .bind(at)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Records an attempt's outcome on the outbox row, the message and the audit.
    pub async fn record_delivery(
        &self,
        row: &OutboxRow,
        delivery: &Delivery,
    ) -> Result<(), StoreError> {
        let (status, message_status, outcome, next, error) = match delivery {
            Delivery::Sent => ("sent", "sent", "delivered", now(), None),
            Delivery::Deferred(at, why) => {
                ("queued", "queued", "deferred", *at, Some(why.as_str()))
            }
            Delivery::Failed(why) => ("failed", "failed", "failed", now(), Some(why.as_str())),
        };
        let outbox = "UPDATE outbox SET status = $2, attempts = attempts + 1, \
                      next_attempt_at = $3, \
                      lease_until = NULL, last_error = $4 WHERE id = $1";
        let message = "UPDATE mail_messages SET status = $2 WHERE id = $1";
        on_pool!(self, |pool| {
            let mut tx = pool.begin_with(self.write_transaction()).await?;
            sqlx::query(outbox)
                .bind(row.id)
                .bind(status)
                .bind(next)
                .bind(error)
                .execute(&mut *tx)
                .await?;
            sqlx::query(message).bind(row.mail_id).bind(message_status).execute(&mut *tx).await?;
            audit(
                &mut tx,
                row.org_id,
                row.mailbox_id,
                row.mail_id,
                outcome,
                &row.recipients.0,
                error,
            )
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

/// Appends a send audit row inside a transaction.
async fn audit<'c, DB>(
    tx: &mut sqlx::Transaction<'c, DB>,
    org_id: Uuid,
    mailbox_id: Uuid,
    mail_id: Uuid,
    outcome: &str,
    recipients: &[String],
    detail: Option<&str>,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Json<&'q [String]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let sql = "INSERT INTO send_audit (id, org_id, mailbox_id, mail_id, outcome, recipients, \
               detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    sqlx::query(sql)
        .bind(Uuid::now_v7())
        .bind(org_id)
        .bind(mailbox_id)
        .bind(mail_id)
        .bind(outcome)
        .bind(Json(recipients))
        .bind(detail)
        .bind(now())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
