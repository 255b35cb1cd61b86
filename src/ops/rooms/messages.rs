//! Messages: `post_room_message` and `list_room_messages`.
//!
//! Cursors are positions in the room (`seq`): a page listed `after` a cursor can never skip a
//! message that commits later, because a room's messages commit in `seq` order.

use axum::http::Method;
use kapable_sdk::comms::types::{
    ListRoomMessagesQuery, PostRoomMessageRequest, RoomMessage, RoomMessageList,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::annotations::with_annotations;
use super::{Actor, Role, access};
use crate::auth::{Caller, Callers};
use crate::error::{ApiError, ApiResult};
use crate::ops::validate;
use crate::pagination::Limit;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::NewMessage;

/// The largest message body, in bytes of UTF-8.
pub const BODY_MAX_BYTES: usize = 32 * 1024;
const IDEMPOTENCY_KEY_MAX: usize = 200;

/// Post a message in the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PostMessageInput {
    /// The room to post in.
    pub room_id: Uuid,
    #[serde(flatten)]
    body: PostRoomMessageRequest,
}

/// List messages of the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListMessagesInput {
    /// The room.
    pub room_id: Uuid,
    #[serde(flatten)]
    query: ListRoomMessagesQuery,
}

/// POST /v1/rooms/{room_id}/messages
pub fn post_room_message() -> Operation {
    Operation::declare("post_room_message", Method::POST, "/v1/rooms/{room_id}/messages")
        .describe(
            "Post a message in a room you are a member of (role participant or above). `body` \
             is up to 32 KiB of text; `kind` defaults to `text`; `reply_to` names a message of \
             the same room. Pass an `idempotency_key` when you may retry: the same key within \
             24 hours returns the first message instead of posting twice.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(post)
}

async fn post(ctx: Ctx, caller: Caller, input: PostMessageInput) -> ApiResult<Reply<RoomMessage>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Participant, "post")?;
    let request = input.body;
    let body = check_body(&request.body)?;
    let kind = check_kind(request.kind.as_deref().unwrap_or("text"))?;
    let metadata = validate::metadata(request.metadata.as_ref())?;
    let key = request.idempotency_key.as_deref();
    let key = key.map(|k| validate::name("idempotency_key", k, IDEMPOTENCY_KEY_MAX)).transpose()?;
    if let Some(reply_to) = request.reply_to
        && ctx.store.message(input.room_id, reply_to).await?.is_none()
    {
        return Err(ApiError::invalid_field("reply_to", "no message with this id in this room"));
    }

    let (sender_kind, sender_id, member_id, agent_id, name) = match &access.actor {
        Actor::Org(org_id) => ("org", *org_id, None, None, "org".to_owned()),
        Actor::Member(m) => {
            let kind = if m.kind == "agent" { "agent" } else { "guest" };
            (kind, m.id, Some(m.id), m.agent_id, m.display_name.clone())
        }
    };
    let message = NewMessage {
        org_id: access.room.org_id,
        room_id: input.room_id,
        sender_kind,
        sender_id,
        sender_member_id: member_id,
        sender_agent_id: agent_id,
        sender_name: name,
        body: body.to_owned(),
        kind: kind.to_owned(),
        metadata,
        reply_to: request.reply_to,
        idempotency_key: key.map(str::to_owned),
    };
    let (row, created) = ctx.store.post_message(message).await?;
    // A new message has no annotations yet; only a repeated post needs them read.
    let posted = match created {
        true => row.into_message(Vec::new()),
        false => with_annotations(&ctx, input.room_id, vec![row]).await?.remove(0),
    };
    Ok(Reply::upserted(posted, created))
}

fn check_body(body: &str) -> ApiResult<&str> {
    if body.trim().is_empty() {
        return Err(ApiError::invalid_field("body", "must not be empty"));
    }
    if body.len() > BODY_MAX_BYTES {
        let message = format!("must be at most {BODY_MAX_BYTES} bytes, got {}", body.len());
        return Err(ApiError::invalid_field("body", message));
    }
    Ok(body)
}

fn check_kind(kind: &str) -> ApiResult<&str> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c);
    if kind.is_empty() || kind.len() > 32 || !kind.chars().all(allowed) {
        return Err(ApiError::invalid_field(
            "kind",
            "must be 1 to 32 of a-z, 0-9, `_`, `-` and `.`, such as `text`",
        ));
    }
    Ok(kind)
}

/// GET /v1/rooms/{room_id}/messages
pub fn list_room_messages() -> Operation {
    Operation::declare("list_room_messages", Method::GET, "/v1/rooms/{room_id}/messages")
        .describe(
            "List a room's messages, each with its sender, kind, reply target and added-up \
             annotations. Without a cursor: the newest first, and `next_cursor` is the `before` \
             of the next older page. With `after`: the messages posted after that cursor, \
             oldest first, and `next_cursor` is the `after` to use next. A cursor is a \
             message's `seq`, so `after=41` lists what came after message 41.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(list)
}

async fn list(
    ctx: Ctx,
    caller: Caller,
    input: ListMessagesInput,
) -> ApiResult<Reply<RoomMessageList>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    let query = input.query;
    let limit = Limit::parse(query.limit)?;
    let before = query.before.as_deref().map(|c| position("before", c)).transpose()?;
    let after = query.after.as_deref().map(|c| position("after", c)).transpose()?;
    let room_id = access.room.id;

    let (rows, next_cursor) = match (before, after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give `before` or `after`, not both"));
        }
        (_, Some(after)) => {
            let mut rows = ctx.store.messages_after(room_id, after, limit.fetch()).await?;
            rows.truncate(limit.rows());
            let next = rows.last().map_or(after, |row| row.seq);
            (rows, Some(next.to_string()))
        }
        (before, None) => {
            let mut rows = ctx.store.messages_before(room_id, before, limit.fetch()).await?;
            let more = rows.len() > limit.rows();
            rows.truncate(limit.rows());
            let next = rows.last().filter(|_| more).map(|row| row.seq.to_string());
            (rows, next)
        }
    };
    let messages = with_annotations(&ctx, room_id, rows).await?;
    Ok(Reply::ok(RoomMessageList { messages, next_cursor }))
}

/// A message cursor: a `seq`, as given in `field`.
fn position(field: &str, text: &str) -> ApiResult<i64> {
    // Plain digits only, as the schema says: no sign, and few enough to fit any `seq`.
    let digits = (1..=18).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse::<i64>().ok()).flatten().ok_or_else(|| {
        ApiError::invalid_field(field, "must be a `next_cursor` or a message's `seq`")
    })
}
