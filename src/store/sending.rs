//! What an org controls and sees of its mailboxes' sending: quota overrides, usage counts,
//! rate-limit hits, the send audit and anomalies.

use chrono::{DateTime, Duration, Utc};
use kapable_sdk::comms::types::{Anomaly, RateLimitHit, SendAuditEntry, SetMailboxQuotasRequest};
use sqlx::types::Json;
use uuid::Uuid;

use super::{MailboxRow, Store, StoreError, now, on_pool};
use crate::mail::policy::Usage;

/// Counts a mailbox's accepted sends in the last minute, hour and day, and since `$5` (the
/// anomaly window), from the send audit.
pub(super) const USAGE: &str = "SELECT \
    COALESCE(SUM(CASE WHEN created_at > $2 THEN 1 ELSE 0 END), 0) AS minute, \
    COALESCE(SUM(CASE WHEN created_at > $3 THEN 1 ELSE 0 END), 0) AS hour, \
    COUNT(*) AS day, \
    COALESCE(SUM(CASE WHEN created_at > $5 THEN 1 ELSE 0 END), 0) AS recent \
    FROM send_audit WHERE mailbox_id = $1 AND outcome = 'accepted' AND created_at > $4";

/// Binds [`USAGE`] for `mailbox_id` at `at`, with an anomaly window of `window`.
macro_rules! bind_usage {
    ($mailbox_id:expr, $at:expr, $window:expr) => {
        sqlx::query_as::<_, $crate::mail::policy::Usage>($crate::store::sending::USAGE)
            .bind($mailbox_id)
            .bind($at - chrono::Duration::minutes(1))
            .bind($at - chrono::Duration::hours(1))
            .bind($at - chrono::Duration::days(1))
            .bind($at - $window)
    };
}
pub(super) use bind_usage;

/// Locks the mailbox's row until the transaction ends, so that sends through it on every
/// instance are counted one after another (Postgres; SQLite's write lock already does this).
/// Taken first in its transaction; `NO KEY UPDATE` leaves the key-share locks of foreign keys
/// (every audit row references its mailbox) free, so lockers queue instead of deadlocking.
pub(super) const LOCK_MAILBOX: &str = "SELECT id FROM mailboxes WHERE id = $1 FOR NO KEY UPDATE";

/// How many anomalies of this rule the mailbox already has since `$3`.
pub(super) const RECENT_ANOMALIES: &str =
    "SELECT COUNT(*) FROM anomalies WHERE mailbox_id = $1 AND rule = $2 AND created_at > $3";

/// Stores an anomaly.
pub(super) const INSERT_ANOMALY: &str = "INSERT INTO anomalies (id, org_id, mailbox_id, rule, \
    summary, evidence, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Stores the finding of an anomaly rule, if any, inside the open transaction `$tx`, unless
/// the mailbox already had one of that rule in the last window; pushes its `anomaly` event
/// onto `$events`.
macro_rules! raise_anomaly {
    ($tx:expr, $mailbox:expr, $finding:expr, $window:expr, $events:expr) => {{
        let (org_id, mailbox_id): (uuid::Uuid, uuid::Uuid) = $mailbox;
        if let Some(finding) = $finding {
            let at = $crate::store::now();
            let (recent,): (i64,) = sqlx::query_as($crate::store::sending::RECENT_ANOMALIES)
                .bind(mailbox_id)
                .bind(finding.rule)
                .bind(at - $window)
                .fetch_one(&mut *$tx)
                .await?;
            if recent == 0 {
                let anomaly = kapable_sdk::comms::types::Anomaly {
                    id: uuid::Uuid::now_v7(),
                    org_id,
                    mailbox_id,
                    rule: finding.rule.to_owned(),
                    summary: finding.summary,
                    evidence: finding.evidence,
                    created_at: at,
                };
                sqlx::query($crate::store::sending::INSERT_ANOMALY)
                    .bind(anomaly.id)
                    .bind(org_id)
                    .bind(mailbox_id)
                    .bind(&anomaly.rule)
                    .bind(&anomaly.summary)
                    .bind(sqlx::types::Json(&anomaly.evidence))
                    .bind(at)
                    .execute(&mut *$tx)
                    .await?;
                tracing::warn!(%org_id, %mailbox_id, rule = %anomaly.rule, "{}", anomaly.summary);
                $events.push($crate::store::NewEvent::org(org_id, "anomaly", &anomaly));
            }
        }
    }};
}
pub(super) use raise_anomaly;

/// Which audit entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this mailbox's.
    pub mailbox_id: Option<Uuid>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct QuotaRow {
    per_minute: Option<i64>,
    per_hour: Option<i64>,
    per_day: Option<i64>,
}

impl From<QuotaRow> for SetMailboxQuotasRequest {
    fn from(row: QuotaRow) -> Self {
        Self { per_minute: row.per_minute, per_hour: row.per_hour, per_day: row.per_day }
    }
}

#[derive(sqlx::FromRow)]
struct HitRow {
    id: Uuid,
    mailbox_id: Uuid,
    caller: String,
    period: String,
    limit_value: i64,
    sent: i64,
    retry_after: i64,
    created_at: DateTime<Utc>,
}

impl From<HitRow> for RateLimitHit {
    fn from(row: HitRow) -> Self {
        RateLimitHit {
            id: row.id,
            mailbox_id: row.mailbox_id,
            caller: row.caller,
            window: row.period,
            limit: row.limit_value,
            sent: row.sent,
            retry_after: row.retry_after,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    mailbox_id: Uuid,
    mail_id: Option<Uuid>,
    outcome: String,
    recipients: Json<Vec<String>>,
    detail: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<AuditRow> for SendAuditEntry {
    fn from(row: AuditRow) -> Self {
        SendAuditEntry {
            id: row.id,
            mailbox_id: row.mailbox_id,
            mail_id: row.mail_id,
            outcome: row.outcome,
            recipients: row.recipients.0,
            detail: row.detail,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AnomalyRow {
    id: Uuid,
    org_id: Uuid,
    mailbox_id: Uuid,
    rule: String,
    summary: String,
    evidence: Json<serde_json::Value>,
    created_at: DateTime<Utc>,
}

impl From<AnomalyRow> for Anomaly {
    fn from(row: AnomalyRow) -> Self {
        Anomaly {
            id: row.id,
            org_id: row.org_id,
            mailbox_id: row.mailbox_id,
            rule: row.rule,
            summary: row.summary,
            evidence: row.evidence.0,
            created_at: row.created_at,
        }
    }
}

impl Store {
    /// The mailbox's quota override, if it has one.
    pub async fn quota_override(
        &self,
        mailbox_id: Uuid,
    ) -> Result<Option<SetMailboxQuotasRequest>, StoreError> {
        let sql = "SELECT per_minute, per_hour, per_day FROM mailbox_quotas WHERE mailbox_id = $1";
        let row: Option<QuotaRow> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(mailbox_id).fetch_optional(pool).await)?;
        Ok(row.map(Into::into))
    }

    /// Replaces the mailbox's quota override.
    pub async fn set_quota_override(
        &self,
        mailbox: &MailboxRow,
        quotas: SetMailboxQuotasRequest,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO mailbox_quotas (mailbox_id, org_id, per_minute, per_hour, \
                   per_day, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (mailbox_id) DO UPDATE SET per_minute = excluded.per_minute, \
                   per_hour = excluded.per_hour, per_day = excluded.per_day, \
                   updated_at = excluded.updated_at";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(mailbox.id)
            .bind(mailbox.org_id)
            .bind(quotas.per_minute)
            .bind(quotas.per_hour)
            .bind(quotas.per_day)
            .bind(now())
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Removes the mailbox's quota override; false when it had none.
    pub async fn delete_quota_override(&self, mailbox_id: Uuid) -> Result<bool, StoreError> {
        let sql = "DELETE FROM mailbox_quotas WHERE mailbox_id = $1";
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(mailbox_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// The mailbox's accepted sends in each window up to now.
    pub async fn send_usage(
        &self,
        mailbox_id: Uuid,
        window: Duration,
    ) -> Result<Usage, StoreError> {
        let at = now();
        Ok(on_pool!(self, |pool| bind_usage!(mailbox_id, at, window).fetch_one(pool).await)?)
    }

    /// One page of the mailbox's rate-limit hits, newest first, before `before`.
    pub async fn rate_limit_hits(
        &self,
        mailbox_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<RateLimitHit>, StoreError> {
        let sql = "SELECT id, mailbox_id, caller, period, limit_value, sent, retry_after, \
                   created_at FROM rate_limit_hits WHERE mailbox_id = $1 \
                   AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3";
        let rows: Vec<HitRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(mailbox_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One page of the org's send audit, newest first, before `before`.
    pub async fn send_audit(
        &self,
        org_id: Uuid,
        filter: &AuditFilter,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<SendAuditEntry>, StoreError> {
        let sql = "SELECT id, mailbox_id, mail_id, outcome, recipients, detail, created_at \
                   FROM send_audit WHERE org_id = $1 AND ($2 IS NULL OR mailbox_id = $2) \
                   AND ($3 IS NULL OR outcome = $3) AND ($4 IS NULL OR created_at >= $4) \
                   AND ($5 IS NULL OR created_at < $5) AND ($6 IS NULL OR id < $6) \
                   ORDER BY id DESC LIMIT $7";
        let rows: Vec<AuditRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(filter.mailbox_id)
            .bind(&filter.outcome)
            .bind(filter.since)
            .bind(filter.until)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One page of the org's anomalies, newest first, before `before`.
    pub async fn anomalies(
        &self,
        org_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Anomaly>, StoreError> {
        let sql = "SELECT id, org_id, mailbox_id, rule, summary, evidence, created_at \
                   FROM anomalies WHERE org_id = $1 AND ($2 IS NULL OR id < $2) \
                   ORDER BY id DESC LIMIT $3";
        let rows: Vec<AnomalyRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Audits a send refused before acceptance because the request was invalid.
    pub async fn record_rejected(
        &self,
        mailbox: &MailboxRow,
        recipients: &[String],
        detail: &str,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO send_audit (id, org_id, mailbox_id, mail_id, outcome, recipients, \
                   detail, created_at) VALUES ($1, $2, $3, NULL, 'rejected', $4, $5, $6)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(Uuid::now_v7())
            .bind(mailbox.org_id)
            .bind(mailbox.id)
            .bind(Json(recipients))
            .bind(detail)
            .bind(now())
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }
}
