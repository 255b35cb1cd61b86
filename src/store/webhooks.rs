//! The queue of inbound messages to deliver to webhook channels.
//!
//! A delivery row is written in the transaction that stores the inbound message, so a message
//! that was stored is delivered at least once. A worker claims due rows with a lease, as the
//! outbox does, and records each attempt on the row.

use chrono::{DateTime, Duration, Utc};
use kapable_sdk::comms::types::WebhookDelivery;
use uuid::Uuid;

use super::{Db, Store, StoreError, now, on_pool};

/// How long a claimed delivery is reserved for the worker that claimed it.
const LEASE: Duration = Duration::seconds(60);

/// The live webhook channels of mailbox `$1`.
pub(super) const LIVE_HOOKS: &str = "SELECT id FROM channels WHERE mailbox_id = $1 \
    AND kind = 'webhook' AND revoked_at IS NULL";

/// Queues message `$4` for channel `$3`.
pub(super) const ENQUEUE: &str = "INSERT INTO webhook_deliveries (id, org_id, channel_id, \
    mail_id, status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'queued', $5, $5) \
    ON CONFLICT (channel_id, mail_id) DO NOTHING";

/// A claimed delivery, with what it takes to make the attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookJob {
    /// The delivery's id.
    pub id: Uuid,
    /// The org.
    pub org_id: Uuid,
    /// The channel.
    pub channel_id: Uuid,
    /// The channel's mailbox.
    pub mailbox_id: Uuid,
    /// The inbound message.
    pub mail_id: Uuid,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Where to POST; absent once the channel is revoked.
    pub url: Option<String>,
    /// The secret to sign with.
    pub signing_secret: Option<String>,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub enum HookOutcome {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// Try again at this time; the status, if the receiver answered.
    Retry(DateTime<Utc>, Option<u16>, String),
    /// Give up.
    Failed(Option<u16>, String),
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    channel_id: Uuid,
    mail_id: Uuid,
    status: String,
    attempts: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(row: DeliveryRow) -> Self {
        let queued = row.status == "queued";
        WebhookDelivery {
            id: row.id,
            channel_id: row.channel_id,
            mail_id: row.mail_id,
            status: row.status,
            attempts: row.attempts,
            last_status: row.last_status,
            last_error: row.last_error,
            next_attempt_at: queued.then_some(row.next_attempt_at),
            delivered_at: row.delivered_at,
            created_at: row.created_at,
        }
    }
}

impl Store {
    /// Claims up to `limit` due deliveries for this worker.
    pub async fn claim_webhooks(&self, limit: i64) -> Result<Vec<WebhookJob>, StoreError> {
        let due = "SELECT id FROM webhook_deliveries WHERE status = 'queued' \
                   AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
                   ORDER BY next_attempt_at LIMIT $3";
        let lock = if matches!(self.db, Db::Postgres(_)) { " FOR UPDATE SKIP LOCKED" } else { "" };
        let claim = format!(
            "UPDATE webhook_deliveries SET lease_until = $1 WHERE id IN ({due}{lock}) RETURNING id"
        );
        let jobs = "SELECT d.id, d.org_id, d.channel_id, c.mailbox_id, d.mail_id, d.attempts, \
                    CASE WHEN c.revoked_at IS NULL THEN c.url END AS url, c.signing_secret \
                    FROM webhook_deliveries d JOIN channels c ON c.id = d.channel_id \
                    WHERE d.id = $1";
        let at = now();
        Ok(on_pool!(self, |pool| {
            let claimed: Vec<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(claim))
                .bind(at + LEASE)
                .bind(at)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(claimed.len());
            for (id,) in claimed {
                out.push(sqlx::query_as::<_, WebhookJob>(jobs).bind(id).fetch_one(pool).await?);
            }
            out
        }))
    }

    /// Records an attempt's outcome on its delivery.
    pub async fn record_webhook_attempt(
        &self,
        id: Uuid,
        outcome: &HookOutcome,
    ) -> Result<(), StoreError> {
        let at = now();
        let (status, next, code, error, delivered) = match outcome {
            HookOutcome::Delivered(code) => ("delivered", at, Some(*code), None, Some(at)),
            HookOutcome::Retry(next, code, why) => {
                ("queued", *next, *code, Some(why.as_str()), None)
            }
            HookOutcome::Failed(code, why) => ("failed", at, *code, Some(why.as_str()), None),
        };
        let sql = "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, \
                   next_attempt_at = $3, lease_until = NULL, last_status = $4, last_error = $5, \
                   delivered_at = $6 WHERE id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(status)
            .bind(next)
            .bind(code.map(i64::from))
            .bind(error)
            .bind(delivered)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// One page of the org's webhook channel's deliveries, newest first; `None` when the org
    /// has no such webhook channel.
    pub async fn webhook_deliveries(
        &self,
        org_id: Uuid,
        channel_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Option<Vec<WebhookDelivery>>, StoreError> {
        let channel = "SELECT id FROM channels WHERE id = $1 AND org_id = $2 AND kind = 'webhook'";
        let sql = "SELECT id, channel_id, mail_id, status, attempts, last_status, last_error, \
                   next_attempt_at, delivered_at, created_at FROM webhook_deliveries \
                   WHERE channel_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";
        Ok(on_pool!(self, |pool| {
            let found: Option<(Uuid,)> =
                sqlx::query_as(channel).bind(channel_id).bind(org_id).fetch_optional(pool).await?;
            match found {
                None => None,
                Some(_) => {
                    let rows: Vec<DeliveryRow> = sqlx::query_as(sql)
                        .bind(channel_id)
                        .bind(before)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?;
                    Some(rows.into_iter().map(Into::into).collect())
                }
            }
        }))
    }
}
