//! Mailboxes, channels and received mail: `create_mailbox`, `delete_mailbox`,
//! `list_agent_mailboxes`, `create_channel`, `list_channels`, `receive_email`,
//! `list_mailbox_messages`, `get_message`.
//!
//! A mailbox belongs to the org and optionally to one agent, which may then read it. An email
//! channel's secret authenticates deliveries of raw mail to that channel alone.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use kapable_sdk::comms::types::{
    Channel, ChannelCreated, ChannelList, CreateChannelRequest, CreateMailboxRequest, Deleted,
    ListMessagesQuery, MailMessage, MailMessageList, Mailbox, MailboxList,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::validate;
use crate::auth::{Caller, Callers, Secret, TokenKind};
use crate::error::{ApiError, ApiResult};
use crate::mail::address::Address;
use crate::mail::inbound::{self, MAX_RAW_BYTES};
use crate::pagination;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::{MailboxRow, NewInbound};

/// Names one mailbox.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MailboxPath {
    /// The mailbox's id.
    pub mailbox_id: Uuid,
}

/// Names one agent.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AgentMailboxesInput {
    /// The agent whose mailboxes to list.
    pub agent_id: Uuid,
}

/// Deliver a raw message to the channel `channel_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReceiveEmailInput {
    /// The email channel.
    pub channel_id: Uuid,
    /// The raw RFC 5322 message as text. (Over REST, POST the message itself as the body with
    /// `Content-Type: message/rfc822`.)
    #[serde(default)]
    pub raw: Option<String>,
    /// The raw message, base64-encoded, for messages that are not valid UTF-8.
    #[serde(default)]
    pub raw_base64: Option<String>,
}

/// List the messages of the mailbox `mailbox_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListMailInput {
    /// The mailbox.
    pub mailbox_id: Uuid,
    #[serde(flatten)]
    query: ListMessagesQuery,
}

/// Names one mail message.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MessagePath {
    /// The message's id.
    pub message_id: Uuid,
}

/// The mailbox `mailbox_id` if the caller may read it: the org's, or an agent's own.
pub(super) async fn readable_mailbox(
    ctx: &Ctx,
    caller: &Caller,
    mailbox_id: Uuid,
) -> ApiResult<MailboxRow> {
    let org_id = caller.org()?;
    let mailbox = ctx.store.mailbox(org_id, mailbox_id).await?;
    let allowed = |m: &MailboxRow| match caller {
        Caller::Org { .. } => true,
        Caller::Agent { agent_id, .. } => m.agent_id == Some(*agent_id),
        _ => false,
    };
    mailbox.filter(allowed).ok_or_else(|| ApiError::not_found("mailbox of yours"))
}

/// POST /v1/mailboxes
pub fn create_mailbox() -> Operation {
    Operation::declare("create_mailbox", Method::POST, "/v1/mailboxes")
        .describe(
            "Create a mailbox with an email address, or update the org's mailbox that has it \
             (201 created, 200 updated). Give it an `agent_id` to let that agent read it and \
             send from it. An address used by another org answers `conflict`.",
        )
        .handle(upsert)
}

async fn upsert(
    ctx: Ctx,
    caller: Caller,
    input: CreateMailboxRequest,
) -> ApiResult<Reply<Mailbox>> {
    let org_id = caller.require_org()?;
    let address = Address::parse("address", &input.address)?;
    let display_name = input.display_name.as_deref();
    let display_name =
        display_name.map(|n| validate::name("display_name", n, validate::NAME_MAX)).transpose()?;
    let agent_id = Some(input.agent_id).filter(|id| !id.is_nil());
    if let Some(agent_id) = agent_id
        && ctx.store.get_agent(org_id, agent_id).await?.is_none()
    {
        return Err(ApiError::not_found("agent"));
    }

    let upserted =
        ctx.store.upsert_mailbox(org_id, agent_id, address.as_str(), display_name).await?;
    let (row, created) = upserted.ok_or_else(|| {
        ApiError::conflict("this address belongs to another org's mailbox; choose another")
    })?;
    Ok(Reply::upserted(row.into(), created))
}

/// DELETE /v1/mailboxes/{mailbox_id}
pub fn delete_mailbox() -> Operation {
    Operation::declare("delete_mailbox", Method::DELETE, "/v1/mailboxes/{mailbox_id}")
        .describe(
            "Delete a mailbox: it stops receiving, its channels stop working, and its address \
             becomes free for a new mailbox.",
        )
        .handle(delete)
}

async fn delete(ctx: Ctx, caller: Caller, input: MailboxPath) -> ApiResult<Reply<Deleted>> {
    let org_id = caller.require_org()?;
    if !ctx.store.delete_mailbox(org_id, input.mailbox_id).await? {
        return Err(ApiError::not_found("mailbox"));
    }
    Ok(Reply::ok(Deleted { deleted: true }))
}

/// GET /v1/agents/{agent_id}/mailboxes
pub fn list_agent_mailboxes() -> Operation {
    Operation::declare("list_agent_mailboxes", Method::GET, "/v1/agents/{agent_id}/mailboxes")
        .describe("List an agent's mailboxes. An agent may list its own.")
        .callers(Callers::ORG.and(Callers::AGENT))
        .handle(list_for_agent)
}

async fn list_for_agent(
    ctx: Ctx,
    caller: Caller,
    input: AgentMailboxesInput,
) -> ApiResult<Reply<MailboxList>> {
    let org_id = caller.org()?;
    let allowed = match &caller {
        Caller::Agent { agent_id, .. } => *agent_id == input.agent_id,
        _ => ctx.store.get_agent(org_id, input.agent_id).await?.is_some(),
    };
    if !allowed {
        return Err(ApiError::not_found("agent"));
    }

    let rows = ctx.store.agent_mailboxes(org_id, input.agent_id).await?;
    Ok(Reply::ok(MailboxList { mailboxes: rows.into_iter().map(Mailbox::from).collect() }))
}

/// POST /v1/channels
pub fn create_channel() -> Operation {
    Operation::declare("create_channel", Method::POST, "/v1/channels")
        .describe(
            "Create a channel on a mailbox. `email`: POST raw messages (message/rfc822) to its \
             `inbound_path` with its secret as bearer token, and they become the mailbox's \
             inbound mail. `webhook`: the mailbox's inbound messages are POSTed to `url`, signed \
             with the secret. The `secret` is returned once.",
        )
        .handle(add_channel)
}

async fn add_channel(
    ctx: Ctx,
    caller: Caller,
    input: CreateChannelRequest,
) -> ApiResult<Reply<ChannelCreated>> {
    let org_id = caller.require_org()?;
    let url = match (input.kind.as_str(), input.url.as_deref()) {
        ("email", None) => None,
        ("email", Some(_)) => {
            return Err(ApiError::invalid_field("url", "an email channel has no url"));
        }
        ("webhook", Some(url)) => Some(webhook_url(url)?),
        ("webhook", None) => {
            return Err(ApiError::invalid_field("url", "a webhook channel needs a url"));
        }
        (other, _) => {
            let message = format!("`{other}` is not a channel kind; use `email` or `webhook`");
            return Err(ApiError::invalid_field("kind", message));
        }
    };
    let mailbox = ctx.store.mailbox(org_id, input.mailbox_id).await?;
    let mailbox = mailbox.ok_or_else(|| ApiError::not_found("mailbox"))?;

    let secret = Secret::generate(TokenKind::Channel);
    // A webhook channel signs with its secret, so the gateway must keep that one.
    let signing = url.is_some().then(|| secret.expose());
    let credential = secret.credential("");
    let row = ctx.store.create_channel(&mailbox, &input.kind, url, &credential, signing).await?;
    Ok(Reply::ok(ChannelCreated { channel: row.into(), secret: secret.expose().to_owned() }))
}

/// A webhook URL: https, or http to a loopback host for local development.
fn webhook_url(url: &str) -> ApiResult<&str> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    let ok = url.starts_with("https://") || loopback.iter().any(|p| url.starts_with(p));
    if !ok || url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid_field(
            "url",
            "must be an https:// URL (or http:// to 127.0.0.1 or localhost), at most 2048 characters",
        ));
    }
    Ok(url)
}

/// GET /v1/mailboxes/{mailbox_id}/channels
pub fn list_channels() -> Operation {
    Operation::declare("list_channels", Method::GET, "/v1/mailboxes/{mailbox_id}/channels")
        .describe("List a mailbox's channels, without their secrets.")
        .callers(Callers::ORG.and(Callers::AGENT))
        .handle(channels)
}

async fn channels(ctx: Ctx, caller: Caller, input: MailboxPath) -> ApiResult<Reply<ChannelList>> {
    let mailbox = readable_mailbox(&ctx, &caller, input.mailbox_id).await?;
    let rows = ctx.store.channels(mailbox.id).await?;
    Ok(Reply::ok(ChannelList { channels: rows.into_iter().map(Channel::from).collect() }))
}

/// POST /v1/channels/{channel_id}/inbound
pub fn receive_email() -> Operation {
    Operation::declare("receive_email", Method::POST, "/v1/channels/{channel_id}/inbound")
        .describe(
            "Deliver a raw RFC 5322 message to an email channel, authenticated by the channel's \
             secret as bearer token. It becomes an inbound message of the channel's mailbox: \
             201 when new, 200 when a message with the same Message-ID was already received. \
             A message that cannot be fully parsed is kept with a `parse_warning`.",
        )
        .callers(Callers::CHANNEL)
        .raw_body("raw_base64")
        .body_limit(MAX_RAW_BYTES * 4 / 3 + 1024)
        .errors(&[(StatusCode::CONFLICT, "conflict")])
        .handle(receive)
}

async fn receive(
    ctx: Ctx,
    caller: Caller,
    input: ReceiveEmailInput,
) -> ApiResult<Reply<MailMessage>> {
    let Caller::Channel { org_id, channel_id, mailbox_id, email } = caller else {
        return Err(ApiError::forbidden("`receive_email` needs the channel's secret (chs_...)"));
    };
    if channel_id != input.channel_id {
        return Err(ApiError::not_found("channel"));
    }
    if !email {
        return Err(ApiError::conflict(
            "this is a webhook channel; only email channels receive mail",
        ));
    }
    let raw = raw_message(input.raw, input.raw_base64)?;
    let mailbox = ctx.store.mailbox(org_id, mailbox_id).await?;
    let mailbox = mailbox.ok_or_else(|| ApiError::not_found("mailbox"))?;

    let parsed = inbound::parse(&raw);
    let inbound = NewInbound { mailbox, parsed, raw_size: raw.len() };
    let (row, created) = ctx.store.store_inbound(inbound).await?;
    if created {
        ctx.webhooks.notify_one();
    }
    Ok(Reply::upserted(row.into(), created))
}

fn raw_message(raw: Option<String>, raw_base64: Option<String>) -> ApiResult<Vec<u8>> {
    let bytes = match (raw, raw_base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(encoded)) => {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| ApiError::invalid_field("raw_base64", "is not valid base64"))?
        }
        _ => return Err(ApiError::invalid("give the message as `raw` or as `raw_base64`, once")),
    };
    if bytes.is_empty() {
        return Err(ApiError::invalid("the message is empty"));
    }
    if bytes.len() > MAX_RAW_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a message may be at most {MAX_RAW_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// GET /v1/mailboxes/{mailbox_id}/messages
pub fn list_mailbox_messages() -> Operation {
    Operation::declare("list_mailbox_messages", Method::GET, "/v1/mailboxes/{mailbox_id}/messages")
        .describe(
            "List a mailbox's messages, inbound and outbound, newest first, whatever their \
             status. `since` (RFC 3339) keeps the newer ones; page with `limit` and `cursor`.",
        )
        .callers(Callers::ORG.and(Callers::AGENT))
        .handle(list_mail)
}

async fn list_mail(
    ctx: Ctx,
    caller: Caller,
    input: ListMailInput,
) -> ApiResult<Reply<MailMessageList>> {
    let mailbox = readable_mailbox(&ctx, &caller, input.mailbox_id).await?;
    let query = input.query;
    let (before, limit) = pagination::page_of(query.cursor.as_deref(), query.limit)?;
    let since = query.since.as_deref().map(|t| time("since", t)).transpose()?;

    let rows = ctx.store.mail_messages(mailbox.id, before, since, limit.fetch()).await?;
    let mut messages: Vec<MailMessage> = rows.into_iter().map(MailMessage::from).collect();
    let next_cursor = pagination::finish(&mut messages, limit, |m| m.id);
    Ok(Reply::ok(MailMessageList { messages, next_cursor }))
}

/// A time parameter `field`, in RFC 3339.
pub(super) fn time(field: &str, text: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        ApiError::invalid_field(field, "must be an RFC 3339 time such as 2026-05-01T00:00:00Z")
    })
}

/// GET /v1/messages/{message_id}
pub fn get_message() -> Operation {
    Operation::declare("get_message", Method::GET, "/v1/messages/{message_id}")
        .describe("Get one email message: body, headers, direction and status.")
        .callers(Callers::ORG.and(Callers::AGENT))
        .handle(get)
}

async fn get(ctx: Ctx, caller: Caller, input: MessagePath) -> ApiResult<Reply<MailMessage>> {
    let org_id = caller.org()?;
    let not_found = || ApiError::not_found("message of yours");
    let row = ctx.store.mail_message(org_id, input.message_id).await?.ok_or_else(not_found)?;
    readable_mailbox(&ctx, &caller, row.mailbox_id).await.map_err(|_| not_found())?;
    Ok(Reply::ok(row.with_headers()))
}
