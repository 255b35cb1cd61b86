//! Bridges: a room linked to a Telegram chat, relaying both ways.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Link a room to a Telegram chat the bot is already in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LinkTelegramRequest {
    /// The chat's id, such as `-1001234567890` for a supergroup.
    #[schemars(extend("not" = { "const": 0 }))]
    pub chat_id: i64,
    /// For a forum topic: the topic's thread id; only that topic is relayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 1, "maximum" = 2_147_483_647))]
    pub message_thread_id: Option<i64>,
}

/// A room's link to a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bridge {
    /// The bridge's id.
    pub id: Uuid,
    /// The room.
    pub room_id: Uuid,
    /// Always `telegram`.
    pub kind: String,
    /// The Telegram chat.
    pub chat_id: i64,
    /// The forum topic, when only one is relayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_thread_id: Option<i64>,
    /// The room participant that messages from the chat are posted as.
    pub participant_id: Uuid,
    /// When it was linked.
    pub created_at: DateTime<Utc>,
}

/// A room's active bridges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BridgeList {
    /// Oldest first.
    pub bridges: Vec<Bridge>,
}

/// Links that connect a chat to a room when opened in Telegram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TelegramSetupUrl {
    /// Opens Telegram to add the bot to a group, which links that group:
    /// `https://t.me/<bot>?startgroup=<token>`.
    pub url: String,
    /// The same for a private chat with the bot: `https://t.me/<bot>?start=<token>`.
    pub private_url: String,
    /// The token's last moment; it links one chat, once.
    pub expires_at: DateTime<Utc>,
}
