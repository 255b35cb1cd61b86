//! Mailboxes, their channels, and the email messages they receive and send.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Create a mailbox, or update the one with the same address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateMailboxRequest {
    /// The agent that owns the mailbox and may read and send from it; the nil id (all zeros)
    /// or absent for a mailbox of the org alone.
    #[serde(default)]
    pub agent_id: Uuid,
    /// The email address, such as `support@agents.example.com`; unique across the gateway.
    /// Stored with its domain in lower case.
    #[schemars(extend("pattern" = super::patterns::ADDRESS, "maxLength" = 254))]
    pub address: String,
    /// The name shown beside the address, such as `Support Bot`; at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::NAME, "maxLength" = 100))]
    pub display_name: Option<String>,
}

/// A mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Mailbox {
    /// The mailbox's id.
    pub id: Uuid,
    /// Its org.
    pub org_id: Uuid,
    /// The agent that owns it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
    /// Its address, domain in lower case.
    pub address: String,
    /// The name shown beside the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An agent's mailboxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MailboxList {
    /// The live mailboxes, oldest first.
    pub mailboxes: Vec<Mailbox>,
}

/// Create a channel on a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("anyOf" = [
    { "properties": { "kind": { "const": "email" }, "url": { "type": "null" } } },
    { "properties": { "kind": { "const": "webhook" }, "url": { "type": "string" } }, "required": ["url"] }
]))]
pub struct CreateChannelRequest {
    /// The mailbox the channel belongs to.
    pub mailbox_id: Uuid,
    /// `email`: raw messages POSTed to the channel's inbound endpoint become the mailbox's
    /// inbound mail. `webhook`: the mailbox's inbound messages are POSTed to `url`.
    #[schemars(extend("enum" = ["email", "webhook"]))]
    pub kind: String,
    /// For `webhook`: the `https://` URL (or `http://` on a loopback address) to deliver to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::WEBHOOK_URL, "maxLength" = 2048))]
    pub url: Option<String>,
}

/// A channel as lists show it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Channel {
    /// The channel's id.
    pub id: Uuid,
    /// Its mailbox.
    pub mailbox_id: Uuid,
    /// `email` or `webhook`.
    pub kind: String,
    /// For `webhook`: where messages are delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For `email`: the path to POST raw messages to, with the secret as bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_path: Option<String>,
    /// The first characters of the secret.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A freshly created channel. The `secret` is shown here once and never again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelCreated {
    /// The channel.
    #[serde(flatten)]
    pub channel: Channel,
    /// The channel's secret (`chs_...`): the bearer token of its inbound endpoint, and the key
    /// that signs its webhook deliveries.
    pub secret: String,
}

/// A mailbox's channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelList {
    /// The live channels, oldest first.
    pub channels: Vec<Channel>,
}

/// A file attached to a message, listed without its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    /// Its file name, when the message gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its MIME type, such as `application/pdf`.
    pub content_type: String,
    /// Its decoded size in bytes.
    pub size: i64,
}

/// An email message of a mailbox, received or sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MailMessage {
    /// The message's id in the gateway.
    pub id: Uuid,
    /// Its mailbox.
    pub mailbox_id: Uuid,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `received` for inbound mail; `queued`, `sent` or `failed` for outbound.
    pub status: String,
    /// Its `Message-ID` header, without angle brackets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The `Message-ID` it answers (`In-Reply-To`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The thread's earlier `Message-ID`s (`References`), oldest first.
    pub references: Vec<String>,
    /// The sender, as `Name <address>` or a bare address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The `To` recipients.
    pub to: Vec<String>,
    /// The `Cc` recipients.
    pub cc: Vec<String>,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The plain-text body, decoded to UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    /// The HTML body, decoded to UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
    /// Attachments, listed with name, type and size.
    pub attachments: Vec<Attachment>,
    /// Every header by lower-cased name (repeated ones as arrays); in `get_message` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<serde_json::Value>,
    /// What could not be read of a malformed message; the rest was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_warning: Option<String>,
    /// When the gateway received or accepted it.
    pub created_at: DateTime<Utc>,
}

/// Which messages of a mailbox to list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ListMessagesQuery {
    /// Messages per page, 1 to 200; default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 1, "maximum" = 200))]
    pub limit: Option<u32>,
    /// Only messages received or accepted at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub since: Option<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::CURSOR))]
    pub cursor: Option<String>,
}

/// One page of a mailbox's messages, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MailMessageList {
    /// Inbound and outbound messages, whatever their status.
    pub messages: Vec<MailMessage>,
    /// Pass as `cursor` to get the next, older page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Send an email from a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("anyOf" = [
    { "properties": { "body_text": { "type": "string" } }, "required": ["body_text"] },
    { "properties": { "body_html": { "type": "string" } }, "required": ["body_html"] }
]))]
pub struct SendEmailRequest {
    /// Recipients: one address or a comma-separated list (`Name <address>` allowed).
    pub to: String,
    /// Copy recipients, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<String>,
    /// Blind copy recipients, comma-separated; they receive the message but appear in no header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bcc: Option<String>,
    /// The subject, at most 998 characters.
    #[schemars(extend("pattern" = super::patterns::ONE_LINE, "maxLength" = 998))]
    pub subject: String,
    /// The plain-text body; give it, `body_html`, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    /// The HTML body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
    /// The sender as `Name <address>`: the display name is free, the address must be the
    /// mailbox's own. Default: the mailbox's display name and address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Where replies should go, if not to the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The `Message-ID` this message answers; the reply joins its thread (`In-Reply-To` and
    /// `References` are set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// A key of your choosing: the same key with the same request within 24 hours returns the
    /// first answer instead of sending twice; with a different request it is a `conflict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::NAME, "maxLength" = 200))]
    pub idempotency_key: Option<String>,
}

/// An accepted send: it is durable and will be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SendEmailResponse {
    /// The outbound message's id; `get_message` follows its status.
    pub id: Uuid,
    /// `queued`.
    pub status: String,
    /// The `Message-ID` the message is sent with, without angle brackets.
    pub message_id: String,
}
