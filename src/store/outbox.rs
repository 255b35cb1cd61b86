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

use super::events::append_events;
use super::sending::{LOCK_MAILBOX, bind_usage, raise_anomaly};
use super::{Db, Store, StoreError, now, on_pool};
use crate::config::SendPolicy;
use crate::mail::policy::{self, Refusal, Usage};

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

/// What a send is checked against before it is accepted.
#[derive(Debug)]
pub struct Gate<'a> {
    /// Who sends: `agent:<id>` or `token:<id>`, for the hits.
    pub caller: &'a str,
    /// The limits and the anomaly thresholds.
    pub policy: &'a SendPolicy,
}

/// The answer to a send: accepted, or refused for a full window.
#[derive(Debug)]
pub enum Acceptance {
    /// Stored, and queued for delivery.
    Accepted,
    /// Not stored: a window was full. The hit is recorded.
    Refused(Refusal),
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

    /// Accepts a send if the mailbox's limits have room: the outbound message, its outbox
    /// row, its `accepted` audit row and its idempotency key, in one transaction. Over a
    /// limit, records the hit and a `rate_limited` audit row instead. Either way the anomaly
    /// rules judge the new counts. A key taken concurrently is a `Duplicate`.
    pub async fn accept_send(
        &self,
        send: &NewSend,
        key: Option<&IdempotencyRecord>,
        mail_id: Uuid,
        gate: &Gate<'_>,
    ) -> Result<Acceptance, StoreError> {
        let message = "INSERT INTO mail_messages (id, org_id, mailbox_id, direction, status, \
             message_id, in_reply_to, refs, from_addr, to_addrs, cc_addrs, subject, body_text, \
             body_html, \
             attachments, headers, parse_warning, raw_size, created_at) VALUES ($1, $2, $3, \
             'outbound', 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, $15, \
             $16)";
        let outbox = "INSERT INTO outbox (id, org_id, mailbox_id, mail_id, envelope_from, \
                      recipients, raw, status, next_attempt_at, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $8)";
        let forget_key = "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 \
                          AND created_at <= $3";
        let remember_key = "INSERT INTO idempotency_keys (scope, key, request_hash, status, \
                            response, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
        let quota = "SELECT per_minute, per_hour, per_day FROM mailbox_quotas \
                     WHERE mailbox_id = $1";
        let hit = "INSERT INTO rate_limit_hits (id, org_id, mailbox_id, caller, period, \
                   limit_value, sent, retry_after, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let oldest = "SELECT MIN(created_at) FROM send_audit WHERE mailbox_id = $1 \
                      AND outcome = 'accepted' AND created_at > $2";
        let recent_hits = "SELECT COUNT(*) FROM rate_limit_hits WHERE mailbox_id = $1 \
                           AND created_at > $2";
        let window = policy::anomaly_window(gate.policy);
        let mailbox = (send.org_id, send.mailbox_id);
        let mut events = Vec::new();
        let accepted = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            if self.is_postgres() {
                sqlx::query(LOCK_MAILBOX).bind(send.mailbox_id).execute(&mut *tx).await?;
            }
            // Read the clock holding the lock, so no send counted is later than this one.
            let at = now();
            let overrides: Option<(Option<i64>, Option<i64>, Option<i64>)> =
                sqlx::query_as(quota).bind(send.mailbox_id).fetch_optional(&mut *tx).await?;
            let overrides = overrides.map(|(per_minute, per_hour, per_day)| {
                kapable_sdk::comms::types::SetMailboxQuotasRequest { per_minute, per_hour, per_day }
            });
            let limits = policy::effective(policy::defaults(gate.policy), overrides);
            let usage: Usage = bind_usage!(send.mailbox_id, at, window).fetch_one(&mut *tx).await?;
            if let Some((full, limit, sent)) = policy::full_window(&limits, &usage) {
                let (first,): (Option<DateTime<Utc>>,) = sqlx::query_as(oldest)
                    .bind(send.mailbox_id)
                    .bind(at - full.length())
                    .fetch_one(&mut *tx)
                    .await?;
                let refusal = Refusal {
                    window: full,
                    limit,
                    sent,
                    retry_after: policy::retry_after(full, first, at),
                };
                sqlx::query(hit)
                    .bind(Uuid::now_v7())
                    .bind(send.org_id)
                    .bind(send.mailbox_id)
                    .bind(gate.caller)
                    .bind(full.name())
                    .bind(limit)
                    .bind(sent)
                    .bind(refusal.retry_after)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                let detail = format!("over the per-{} limit of {limit}", full.name());
                audit(
                    &mut tx,
                    send.org_id,
                    send.mailbox_id,
                    None,
                    "rate_limited",
                    &send.recipients,
                    Some(&detail),
                )
                .await?;
                let (hits,): (i64,) = sqlx::query_as(recent_hits)
                    .bind(send.mailbox_id)
                    .bind(at - window)
                    .fetch_one(&mut *tx)
                    .await?;
                raise_anomaly!(
                    tx,
                    mailbox,
                    policy::rate_limit_burst(hits, gate.policy),
                    window,
                    events
                );
                append_events!(self, tx, &events);
                tx.commit().await?;
                Acceptance::Refused(refusal)
            } else {
                sqlx::query(message)
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
                    .execute(&mut *tx)
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
                    Some(mail_id),
                    "accepted",
                    &send.recipients,
                    None,
                )
                .await?;
                let usage = Usage { recent: usage.recent + 1, day: usage.day + 1, ..usage };
                raise_anomaly!(
                    tx,
                    mailbox,
                    policy::volume_spike(&usage, gate.policy),
                    window,
                    events
                );
                append_events!(self, tx, &events);
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
                Acceptance::Accepted
            }
        });
        self.announce(&events);
        Ok(accepted)
    }

    /// How many sends wait for delivery (due now or later).
    pub async fn outbox_depth(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) FROM outbox WHERE status = 'queued'";
        let (depth,): (i64,) = on_pool!(self, |pool| sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(depth.try_into().unwrap_or_default())
    }

    /// Claims up to `limit` due outbox rows for this worker, reserved for it for `lease`.
    pub async fn claim_outbox(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
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
                    .bind(at + lease)
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
                    .bind(at + lease)
                    .bind(at)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Records an attempt's outcome on the outbox row, the message and the audit; a failure
    /// is judged by the `failure_spike` rule.
    pub async fn record_delivery(
        &self,
        row: &OutboxRow,
        delivery: &Delivery,
        policy: &SendPolicy,
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
        let failures = "SELECT COUNT(*) FROM send_audit WHERE mailbox_id = $1 \
                        AND outcome = 'failed' AND created_at > $2";
        let window = policy::anomaly_window(policy);
        let mut events = Vec::new();
        on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            // Failures are counted for the anomaly rule one at a time per mailbox.
            if matches!(delivery, Delivery::Failed(_)) && self.is_postgres() {
                sqlx::query(LOCK_MAILBOX).bind(row.mailbox_id).execute(&mut *tx).await?;
            }
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
                Some(row.mail_id),
                outcome,
                &row.recipients.0,
                error,
            )
            .await?;
            if let Delivery::Failed(why) = delivery {
                let (failed,): (i64,) = sqlx::query_as(failures)
                    .bind(row.mailbox_id)
                    .bind(now() - window)
                    .fetch_one(&mut *tx)
                    .await?;
                let mailbox = (row.org_id, row.mailbox_id);
                raise_anomaly!(
                    tx,
                    mailbox,
                    policy::failure_spike(failed, why, policy),
                    window,
                    events
                );
                append_events!(self, tx, &events);
            }
            tx.commit().await?;
        });
        self.announce(&events);
        Ok(())
    }
}

/// Appends a send audit row inside a transaction.
async fn audit<'c, DB>(
    tx: &mut sqlx::Transaction<'c, DB>,
    org_id: Uuid,
    mailbox_id: Uuid,
    mail_id: Option<Uuid>,
    outcome: &str,
    recipients: &[String],
    detail: Option<&str>,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<Uuid>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
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
