//! What an operator sees and bounds of what mailboxes send: limits, refusals, the send audit,
//! anomalies, and the deliveries of webhook channels.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Send limits: how many sends a mailbox may have accepted in each sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SendLimits {
    /// Sends accepted in any 60 seconds.
    pub per_minute: i64,
    /// Sends accepted in any hour.
    pub per_hour: i64,
    /// Sends accepted in any 24 hours.
    pub per_day: i64,
}

/// Override a mailbox's send limits; a limit left out stays the org default. Each limit is
/// 0 (the mailbox may not send) to 1,000,000.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SetMailboxQuotasRequest {
    /// Sends accepted in any 60 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "maximum" = 1_000_000))]
    pub per_minute: Option<i64>,
    /// Sends accepted in any hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "maximum" = 1_000_000))]
    pub per_hour: Option<i64>,
    /// Sends accepted in any 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "maximum" = 1_000_000))]
    pub per_day: Option<i64>,
}

/// A mailbox's send limits: what applies, where it comes from, and what is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MailboxQuotas {
    /// The mailbox.
    pub mailbox_id: Uuid,
    /// The limits that apply: the override where it sets one, the default elsewhere.
    pub effective: SendLimits,
    /// The gateway's defaults.
    pub defaults: SendLimits,
    /// The mailbox's override, absent when it has none.
    #[serde(rename = "override", default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<SetMailboxQuotasRequest>,
    /// Sends accepted in each window up to now.
    pub used: SendLimits,
}

/// A send refused because the mailbox was over a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RateLimitHit {
    /// The hit's id.
    pub id: Uuid,
    /// The mailbox.
    pub mailbox_id: Uuid,
    /// Who tried to send: `agent:<id>` or `token:<id>`.
    pub caller: String,
    /// The window that was full: `minute`, `hour` or `day`.
    #[schemars(extend("enum" = ["minute", "hour", "day"]))]
    pub window: String,
    /// The limit of that window.
    pub limit: i64,
    /// Sends already accepted in the window.
    pub sent: i64,
    /// Seconds the caller was told to wait.
    pub retry_after: i64,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// One page of a mailbox's rate-limit hits, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RateLimitHitList {
    /// The hits.
    pub hits: Vec<RateLimitHit>,
    /// Pass as `cursor` to get the next, older page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Which entries of the org's send audit to list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SendAuditQuery {
    /// Only this mailbox's entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_id: Option<Uuid>,
    /// Only entries with this outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["accepted", "rate_limited", "rejected", "delivered", "deferred", "failed"]))]
    pub outcome: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub until: Option<String>,
    /// Entries per page, 1 to 200; default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 1, "maximum" = 200))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::CURSOR))]
    pub cursor: Option<String>,
}

/// One send attempt or delivery outcome. The audit never holds a message's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SendAuditEntry {
    /// The entry's id.
    pub id: Uuid,
    /// The sending mailbox.
    pub mailbox_id: Uuid,
    /// The outbound message, for an accepted send and its deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_id: Option<Uuid>,
    /// `accepted`, `rate_limited`, `rejected` (the request was invalid), `delivered`,
    /// `deferred` (a temporary relay failure; retried) or `failed` (given up).
    pub outcome: String,
    /// The envelope recipients (To, Cc and Bcc).
    pub recipients: Vec<String>,
    /// Why, for every outcome but `accepted` and `delivered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// One page of the send audit, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SendAuditPage {
    /// The entries.
    pub entries: Vec<SendAuditEntry>,
    /// Pass as `cursor` to get the next, older page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Something in the send audit that looks wrong, with the figures that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Anomaly {
    /// The anomaly's id.
    pub id: Uuid,
    /// The org.
    pub org_id: Uuid,
    /// The mailbox it concerns.
    pub mailbox_id: Uuid,
    /// `volume_spike` (far more sends than the mailbox's own baseline), `rate_limit_burst`
    /// (many refused sends) or `failure_spike` (many permanent delivery failures).
    #[schemars(extend("enum" = ["volume_spike", "rate_limit_burst", "failure_spike"]))]
    pub rule: String,
    /// What was seen, in one sentence.
    pub summary: String,
    /// The figures the rule judged: counts, window, baseline and threshold.
    pub evidence: serde_json::Value,
    /// When it was detected.
    pub created_at: DateTime<Utc>,
}

/// One page of the org's anomalies, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnomalyList {
    /// The anomalies.
    pub anomalies: Vec<Anomaly>,
    /// Pass as `cursor` to get the next, older page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One inbound message's delivery to a webhook channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDelivery {
    /// The delivery's id, also sent as the `Kapable-Delivery` header.
    pub id: Uuid,
    /// The webhook channel.
    pub channel_id: Uuid,
    /// The inbound message delivered.
    pub mail_id: Uuid,
    /// `queued` (waiting for its next attempt), `delivered` or `failed` (given up).
    #[schemars(extend("enum" = ["queued", "delivered", "failed"]))]
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// The HTTP status of the last attempt, when the receiver answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is due, while queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the receiver accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the message was queued for the channel.
    pub created_at: DateTime<Utc>,
}

/// One page of a webhook channel's deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDeliveryList {
    /// The deliveries.
    pub deliveries: Vec<WebhookDelivery>,
    /// Pass as `cursor` to get the next, older page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What a webhook channel POSTs for each inbound message of its mailbox. The body is signed:
/// `Kapable-Signature: v1=<hex HMAC-SHA256 of "<Kapable-Timestamp>.<body>" keyed with the
/// channel's secret>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookPayload {
    /// Always `mail_message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The delivery's id; the same on every retry, so a receiver can drop repeats.
    pub delivery_id: Uuid,
    /// The webhook channel.
    pub channel_id: Uuid,
    /// The mailbox that received the message.
    pub mailbox_id: Uuid,
    /// The message, as `get_message` returns it.
    pub message: super::MailMessage,
}
