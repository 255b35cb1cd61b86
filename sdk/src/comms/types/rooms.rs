//! Rooms: multi-party conversations with invites, roles, messages, annotations and presence.
//!
//! Roles, strongest first: `owner`, `admin`, `participant`, `observer`. Observers read,
//! participants also post and annotate, admins also invite and revoke participants and
//! observers, owners do everything. An org app token acts as owner in every room of its org.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Create a room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateRoomRequest {
    /// The room's name, 1 to 100 characters; need not be unique.
    #[schemars(extend("pattern" = super::patterns::NAME, "maxLength" = 100))]
    pub name: String,
    /// What the room is for; at most 1,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::TEXT, "maxLength" = 1000))]
    pub description: Option<String>,
    /// Free-form JSON object kept with the room (at most 16 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("type" = ["object", "null"]))]
    pub metadata: Option<serde_json::Value>,
}

/// A room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Room {
    /// The room's id.
    pub id: Uuid,
    /// The org the room belongs to.
    pub org_id: Uuid,
    /// The room's name.
    pub name: String,
    /// What the room is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form JSON object kept with the room; `{}` when none was given.
    pub metadata: serde_json::Value,
    /// When the room was created.
    pub created_at: DateTime<Utc>,
}

/// The answer of `create_room`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomResponse {
    /// The new room.
    pub room: Room,
}

/// A room with the participants who are in it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomDetail {
    /// The room.
    pub room: Room,
    /// Its current participants with their roles, in the order they joined.
    pub participants: Vec<Participant>,
}

/// Someone in a room: an agent of the org, or a guest who joined by invite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Participant {
    /// The participant's id in this room.
    pub id: Uuid,
    /// `agent` (an agent of the org) or `guest` (joined by invite without an agent key).
    pub kind: String,
    /// The agent, for `agent` participants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
    /// The name shown with the participant's messages.
    pub display_name: String,
    /// `owner`, `admin`, `participant` or `observer`.
    pub role: String,
    /// When the participant joined.
    pub joined_at: DateTime<Utc>,
}

/// Which rooms to list.
pub type ListRoomsQuery = crate::comms::types::PageQuery;

/// One page of rooms, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomList {
    /// The rooms of this page: all of the org's for an org token, the agent's own for an agent.
    pub rooms: Vec<Room>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Create an invite token for a room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateInviteRequest {
    /// Seconds until the invite expires, 60 to 31,536,000 (a year); default 604,800 (7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 60, "maximum" = 31_536_000))]
    pub expires_in: Option<i64>,
    /// How many joins the invite allows, at least 1; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 1))]
    pub max_uses: Option<i64>,
    /// The role of those who join with it: `admin`, `participant` (default) or `observer`.
    /// Only an owner may invite admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["owner", "admin", "participant", "observer"]))]
    pub role: Option<String>,
}

/// An invite as lists show it: never the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Invite {
    /// The invite's id, for revoking it.
    pub id: Uuid,
    /// The room it lets people into.
    pub room_id: Uuid,
    /// The role given to those who join with it.
    pub role: String,
    /// The first characters of the token.
    pub prefix: String,
    /// How many joins it allows; absent for unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<i64>,
    /// How many joins it has admitted.
    pub uses: i64,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A freshly created invite. The plaintext `token` is shown here once and never again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InviteCreated {
    /// The invite.
    #[serde(flatten)]
    pub invite: Invite,
    /// The invite token: whoever holds it joins with `join_room`, until it expires or is used up.
    pub token: String,
}

/// One page of a room's active invites, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InviteList {
    /// Invites that are neither expired, revoked nor used up.
    pub invites: Vec<Invite>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Join a room with an invite token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JoinRoomRequest {
    /// The name a guest is shown under, 1 to 100 characters; default `guest`. Ignored when an
    /// agent of the room's org joins (it keeps its own name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::NAME, "maxLength" = 100))]
    pub display_name: Option<String>,
}

/// The answer of `join_room`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JoinRoomResponse {
    /// The room joined.
    pub room: Room,
    /// Who joined, and with which role.
    pub participant: Participant,
    /// For a guest: a token (`pt_...`) for this room's member operations, on REST and MCP;
    /// shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_token: Option<String>,
}

/// Make an agent of the org a member of a room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InviteAgentRequest {
    /// The agent to add.
    pub agent_id: Uuid,
    /// Its role: `admin`, `participant` (default) or `observer`; `owner` too when an owner asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["owner", "admin", "participant", "observer"]))]
    pub role: Option<String>,
}

/// Post a message in a room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PostRoomMessageRequest {
    /// The text of the message: 1 to 32,768 bytes of UTF-8.
    #[schemars(extend("pattern" = super::patterns::NOT_BLANK, "maxLength" = 32_768))]
    pub body: String,
    /// What sort of message it is, such as `text` (the default), `status` or `tool_result`:
    /// 1 to 32 of `a-z`, `0-9`, `_`, `-`, `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::KIND))]
    pub kind: Option<String>,
    /// Free-form JSON object sent with the message (at most 16 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("type" = ["object", "null"]))]
    pub metadata: Option<serde_json::Value>,
    /// The id of the message of this room that this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Uuid>,
    /// A key of your choosing, at most 200 characters: posting again with the same key within
    /// 24 hours returns the first message instead of posting a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::NAME, "maxLength" = 200))]
    pub idempotency_key: Option<String>,
}

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sender {
    /// `agent`, `guest` or `org` (an org app token).
    pub kind: String,
    /// The sender's participant id in the room; absent for `org`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<Uuid>,
    /// The agent, for `agent` senders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
    /// The name shown with the message.
    pub display_name: String,
}

/// The annotations of one kind and key on a message, added up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnnotationSummary {
    /// `reaction` or `metadata`.
    pub kind: String,
    /// The reaction (such as `👍` or `ack`) or the metadata key.
    pub key: String,
    /// How many senders annotated the message with this key.
    pub count: i64,
    /// For `metadata`: the value most recently set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// A message of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomMessage {
    /// The message's id.
    pub id: Uuid,
    /// The room it was posted in.
    pub room_id: Uuid,
    /// Its position in the room: every later message has a larger one.
    pub seq: i64,
    /// Who posted it.
    pub sender: Sender,
    /// Its text.
    pub body: String,
    /// What sort of message it is; `text` by default.
    pub kind: String,
    /// The JSON object sent with it; `{}` when none was.
    pub metadata: serde_json::Value,
    /// The message it answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Uuid>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// Reactions and metadata annotations, added up per kind and key.
    pub annotations: Vec<AnnotationSummary>,
}

/// Which messages of a room to list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ListRoomMessagesQuery {
    /// Messages per page, 1 to 200; default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 1, "maximum" = 200))]
    pub limit: Option<u32>,
    /// List messages older than this cursor, newest first (the default direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::SEQ))]
    pub before: Option<String>,
    /// List messages newer than this cursor, oldest first: to follow a room, pass the last
    /// `next_cursor` you got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::SEQ))]
    pub after: Option<String>,
}

/// One page of a room's messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomMessageList {
    /// Newest first, or oldest first when listing `after` a cursor.
    pub messages: Vec<RoomMessage>,
    /// Without `after`: the `before` of the next older page, absent at the oldest message.
    /// With `after`: the `after` to use next, present even when nothing newer exists yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One annotation to add to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("anyOf" = [
    { "properties": { "kind": { "const": "reaction" }, "value": { "type": "null" } } },
    {
        "properties": { "kind": { "const": "metadata" }, "value": { "not": { "type": "null" } } },
        "required": ["value"]
    }
]))]
pub struct Annotation {
    /// `reaction` (unique per message, sender and key) or `metadata` (a key with a value).
    #[schemars(extend("enum" = ["reaction", "metadata"]))]
    pub kind: String,
    /// The reaction or metadata key: 1 to 64 characters.
    #[schemars(extend("pattern" = super::patterns::NOT_BLANK, "maxLength" = 64))]
    pub key: String,
    /// For `metadata`: any JSON value (at most 4 KiB). Must be absent for a reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// Annotate a message with reactions or metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnnotateMessageRequest {
    /// 1 to 20 annotations.
    #[schemars(extend("minItems" = 1, "maxItems" = 20))]
    pub annotations: Vec<Annotation>,
}

/// Report an agent's presence in a room.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatRequest {
    /// `active` (default), `idle` or `busy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["active", "idle", "busy"]))]
    pub status: Option<String>,
    /// What the agent is doing, at most 280 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::TEXT, "maxLength" = 280))]
    pub note: Option<String>,
}

/// An agent's presence in a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PresenceEntry {
    /// The agent.
    pub agent_id: Uuid,
    /// `active`, `idle` or `busy`, as last reported.
    pub status: String,
    /// What the agent said it is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When its last heartbeat arrived.
    pub last_seen: DateTime<Utc>,
    /// Whether that heartbeat is recent enough (within the presence TTL, 60 s by default).
    pub online: bool,
}

/// The presence of a room's agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomPresence {
    /// One entry per member agent that has ever sent a heartbeat in the room.
    pub presence: Vec<PresenceEntry>,
}
