//! What an operator bounds and sees of what mailboxes send: `get_mailbox_quotas`,
//! `set_mailbox_quotas`, `delete_mailbox_quotas`, `list_rate_limit_hits`, `list_send_audit`,
//! `list_anomalies` and `list_webhook_deliveries`.

use axum::http::Method;
use kapable_sdk::comms::types::{
    AnomalyList, Deleted, MailboxQuotas, PageQuery, RateLimitHitList, SendAuditPage,
    SendAuditQuery, SetMailboxQuotasRequest, WebhookDeliveryList,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::mail::{MailboxPath, readable_mailbox, time};
use crate::auth::{Caller, Callers};
use crate::error::{ApiError, ApiResult};
use crate::mail::policy::{self, QUOTA_MAX};
use crate::pagination;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::{AuditFilter, MailboxRow};

const OUTCOMES: [&str; 6] =
    ["accepted", "rate_limited", "rejected", "delivered", "deferred", "failed"];

/// Override the send limits of the mailbox `mailbox_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SetQuotasInput {
    /// The mailbox.
    pub mailbox_id: Uuid,
    #[serde(flatten)]
    quotas: SetMailboxQuotasRequest,
}

/// A page of the mailbox `mailbox_id`'s rate-limit hits.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct HitsInput {
    /// The mailbox.
    pub mailbox_id: Uuid,
    #[serde(flatten)]
    page: PageQuery,
}

/// A page of the org `org_id`'s send audit.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AuditInput {
    /// Your org's id (`whoami` tells it).
    pub org_id: Uuid,
    #[serde(flatten)]
    query: SendAuditQuery,
}

/// A page of the org `org_id`'s anomalies.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnomaliesInput {
    /// Your org's id (`whoami` tells it).
    pub org_id: Uuid,
    #[serde(flatten)]
    page: PageQuery,
}

/// A page of the webhook channel `channel_id`'s deliveries.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeliveriesInput {
    /// The webhook channel.
    pub channel_id: Uuid,
    #[serde(flatten)]
    page: PageQuery,
}

/// GET /v1/mailboxes/{mailbox_id}/quotas
pub fn get_mailbox_quotas() -> Operation {
    Operation::declare("get_mailbox_quotas", Method::GET, "/v1/mailboxes/{mailbox_id}/quotas")
        .describe(
            "Get a mailbox's send limits per minute, hour and day: the effective limits, the \
             gateway's defaults, the mailbox's override if it has one, and the sends accepted \
             in each window so far.",
        )
        .handle(get_quotas)
}

async fn get_quotas(
    ctx: Ctx,
    caller: Caller,
    input: MailboxPath,
) -> ApiResult<Reply<MailboxQuotas>> {
    let mailbox = org_mailbox(&ctx, &caller, input.mailbox_id).await?;
    Ok(Reply::ok(quotas_of(&ctx, &mailbox).await?))
}

/// PUT /v1/mailboxes/{mailbox_id}/quotas
pub fn set_mailbox_quotas() -> Operation {
    Operation::declare("set_mailbox_quotas", Method::PUT, "/v1/mailboxes/{mailbox_id}/quotas")
        .describe(
            "Override a mailbox's send limits: `per_minute`, `per_hour`, `per_day`, each 0 (no \
             sending) to 1000000. A limit left out follows the gateway default. Replaces any \
             earlier override, and applies to the next send on every gateway instance.",
        )
        .handle(set_quotas)
}

async fn set_quotas(
    ctx: Ctx,
    caller: Caller,
    input: SetQuotasInput,
) -> ApiResult<Reply<MailboxQuotas>> {
    let mailbox = org_mailbox(&ctx, &caller, input.mailbox_id).await?;
    let q = input.quotas;
    for (field, value) in
        [("per_minute", q.per_minute), ("per_hour", q.per_hour), ("per_day", q.per_day)]
    {
        if let Some(value) = value.filter(|v| !(0..=QUOTA_MAX).contains(v)) {
            let message = format!("must be between 0 and {QUOTA_MAX}, got {value}");
            return Err(ApiError::invalid_field(field, message));
        }
    }
    ctx.store.set_quota_override(&mailbox, q).await?;
    Ok(Reply::ok(quotas_of(&ctx, &mailbox).await?))
}

/// DELETE /v1/mailboxes/{mailbox_id}/quotas
pub fn delete_mailbox_quotas() -> Operation {
    Operation::declare("delete_mailbox_quotas", Method::DELETE, "/v1/mailboxes/{mailbox_id}/quotas")
        .describe("Remove a mailbox's quota override: its limits are the gateway defaults again.")
        .handle(delete_quotas)
}

async fn delete_quotas(ctx: Ctx, caller: Caller, input: MailboxPath) -> ApiResult<Reply<Deleted>> {
    let mailbox = org_mailbox(&ctx, &caller, input.mailbox_id).await?;
    ctx.store.delete_quota_override(mailbox.id).await?;
    Ok(Reply::ok(Deleted { deleted: true }))
}

/// GET /v1/mailboxes/{mailbox_id}/send-audit/hits
pub fn list_rate_limit_hits() -> Operation {
    Operation::declare(
        "list_rate_limit_hits",
        Method::GET,
        "/v1/mailboxes/{mailbox_id}/send-audit/hits",
    )
    .describe(
        "List the sends of a mailbox (your own, for an agent) refused by its limits, newest \
         first: who tried, which window was full, its limit and the wait given.",
    )
    .callers(Callers::ORG.and(Callers::AGENT))
    .handle(list_hits)
}

async fn list_hits(
    ctx: Ctx,
    caller: Caller,
    input: HitsInput,
) -> ApiResult<Reply<RateLimitHitList>> {
    let mailbox = readable_mailbox(&ctx, &caller, input.mailbox_id).await?;
    let (before, limit) = pagination::page_of(input.page.cursor.as_deref(), input.page.limit)?;
    let mut hits = ctx.store.rate_limit_hits(mailbox.id, before, limit.fetch()).await?;
    let next_cursor = pagination::finish(&mut hits, limit, |h| h.id);
    Ok(Reply::ok(RateLimitHitList { hits, next_cursor }))
}

/// GET /v1/orgs/{org_id}/send-audit
pub fn list_send_audit() -> Operation {
    Operation::declare("list_send_audit", Method::GET, "/v1/orgs/{org_id}/send-audit")
        .describe(
            "List the org's send audit, newest first: every send accepted, `rate_limited` or \
             `rejected`, and every delivery `delivered`, `deferred` or `failed`, with its \
             recipients and why (never the body). Filter by `mailbox_id`, `outcome`, `since` \
             and `until` (RFC 3339); page with `limit` and `cursor`.",
        )
        .handle(list_audit)
}

async fn list_audit(
    ctx: Ctx,
    caller: Caller,
    input: AuditInput,
) -> ApiResult<Reply<SendAuditPage>> {
    let org_id = caller.require_own_org(input.org_id)?;
    let query = input.query;
    if let Some(outcome) = query.outcome.as_deref().filter(|o| !OUTCOMES.contains(o)) {
        let message = format!("`{outcome}` is not an outcome; use one of {}", OUTCOMES.join(", "));
        return Err(ApiError::invalid_field("outcome", message));
    }
    let filter = AuditFilter {
        mailbox_id: query.mailbox_id,
        outcome: query.outcome,
        since: query.since.as_deref().map(|t| time("since", t)).transpose()?,
        until: query.until.as_deref().map(|t| time("until", t)).transpose()?,
    };
    let (before, limit) = pagination::page_of(query.cursor.as_deref(), query.limit)?;
    let mut entries = ctx.store.send_audit(org_id, &filter, before, limit.fetch()).await?;
    let next_cursor = pagination::finish(&mut entries, limit, |e| e.id);
    Ok(Reply::ok(SendAuditPage { entries, next_cursor }))
}

/// GET /v1/orgs/{org_id}/anomalies
pub fn list_anomalies() -> Operation {
    Operation::declare("list_anomalies", Method::GET, "/v1/orgs/{org_id}/anomalies")
        .describe(
            "List the anomalies found in the org's send audit, newest first, each with its rule \
             (`volume_spike`, `rate_limit_burst`, `failure_spike`) and the figures that raised \
             it. The same anomalies are streamed live on /v1/orgs/{org_id}/anomaly-feed.",
        )
        .handle(list_anomalies_of_org)
}

async fn list_anomalies_of_org(
    ctx: Ctx,
    caller: Caller,
    input: AnomaliesInput,
) -> ApiResult<Reply<AnomalyList>> {
    let org_id = caller.require_own_org(input.org_id)?;
    let (before, limit) = pagination::page_of(input.page.cursor.as_deref(), input.page.limit)?;
    let mut anomalies = ctx.store.anomalies(org_id, before, limit.fetch()).await?;
    let next_cursor = pagination::finish(&mut anomalies, limit, |a| a.id);
    Ok(Reply::ok(AnomalyList { anomalies, next_cursor }))
}

/// GET /v1/channels/{channel_id}/deliveries
pub fn list_webhook_deliveries() -> Operation {
    Operation::declare(
        "list_webhook_deliveries",
        Method::GET,
        "/v1/channels/{channel_id}/deliveries",
    )
    .describe(
        "List a webhook channel's deliveries, newest first: one per inbound message, with \
             its status (`queued`, `delivered`, `failed`), attempts and the last error.",
    )
    .handle(list_deliveries)
}

async fn list_deliveries(
    ctx: Ctx,
    caller: Caller,
    input: DeliveriesInput,
) -> ApiResult<Reply<WebhookDeliveryList>> {
    let org_id = caller.require_org()?;
    let (before, limit) = pagination::page_of(input.page.cursor.as_deref(), input.page.limit)?;
    let Some(mut deliveries) =
        ctx.store.webhook_deliveries(org_id, input.channel_id, before, limit.fetch()).await?
    else {
        return Err(ApiError::not_found("webhook channel"));
    };
    let next_cursor = pagination::finish(&mut deliveries, limit, |d| d.id);
    Ok(Reply::ok(WebhookDeliveryList { deliveries, next_cursor }))
}

/// The org's mailbox `mailbox_id`; 404 for any other.
async fn org_mailbox(ctx: &Ctx, caller: &Caller, mailbox_id: Uuid) -> ApiResult<MailboxRow> {
    let org_id = caller.require_org()?;
    let mailbox = ctx.store.mailbox(org_id, mailbox_id).await?;
    mailbox.ok_or_else(|| ApiError::not_found("mailbox"))
}

async fn quotas_of(ctx: &Ctx, mailbox: &MailboxRow) -> ApiResult<MailboxQuotas> {
    let sending = &ctx.settings.sending;
    let overrides = ctx.store.quota_override(mailbox.id).await?;
    let used = ctx.store.send_usage(mailbox.id, policy::anomaly_window(sending)).await?;
    let defaults = policy::defaults(sending);
    Ok(MailboxQuotas {
        mailbox_id: mailbox.id,
        effective: policy::effective(defaults, overrides),
        defaults,
        overrides,
        used: used.as_limits(),
    })
}
