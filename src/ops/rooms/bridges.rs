//! Bridges of a room to Telegram chats: `link_telegram`, `telegram_setup_url`, `list_bridges`,
//! `revoke_bridge`. All are for the room's admins and owners.

use axum::http::{Method, StatusCode};
use kapable_sdk::comms::types::{
    Bridge, BridgeList, Deleted, LinkTelegramRequest, TelegramSetupUrl,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::room::RoomPath;
use super::{Role, access};
use crate::auth::{Caller, Callers};
use crate::bridge::telegram::{self, Telegram};
use crate::error::{ApiError, ApiResult};
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::now;

const NOT_CONFIGURED: (StatusCode, &str) = (StatusCode::CONFLICT, "bridge_not_configured");

/// Link the room `room_id` to a Telegram chat.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LinkInput {
    /// The room.
    pub room_id: Uuid,
    #[serde(flatten)]
    body: LinkTelegramRequest,
}

/// Names one bridge of a room.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BridgePath {
    /// The room.
    pub room_id: Uuid,
    /// The bridge.
    pub bridge_id: Uuid,
}

/// The bridge, or 409 `bridge_not_configured`.
fn configured(ctx: &Ctx) -> ApiResult<&Telegram> {
    ctx.telegram.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "bridge_not_configured",
            "this gateway has no Telegram bot; its operator sets TELEGRAM_BOT_TOKEN to turn the \
             bridge on",
        )
    })
}

/// POST /v1/rooms/{room_id}/bridges/telegram
pub fn link_telegram() -> Operation {
    Operation::declare("link_telegram", Method::POST, "/v1/rooms/{room_id}/bridges/telegram")
        .describe(
            "Link a room to a Telegram chat the bot is already in, by `chat_id` (and \
             `message_thread_id` for one forum topic). Messages posted in the room then appear \
             in the chat with their sender's name, and text messages in the chat appear in the \
             room. Room admins only. Without a bot configured: `bridge_not_configured`.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .success(StatusCode::CREATED)
        .errors(&[NOT_CONFIGURED])
        .handle(link)
}

async fn link(ctx: Ctx, caller: Caller, input: LinkInput) -> ApiResult<Reply<Bridge>> {
    // Whose room it is comes first: another org's room is a 404 whatever the configuration.
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "link a chat")?;
    configured(&ctx)?;
    let body = input.body;
    if body.chat_id == 0 {
        return Err(ApiError::invalid_field("chat_id", "is not a Telegram chat id"));
    }
    if body.message_thread_id.is_some_and(|t| i32::try_from(t).is_err() || t <= 0) {
        return Err(ApiError::invalid_field("message_thread_id", "is not a forum topic id"));
    }
    let room = &access.room;
    let bridge =
        ctx.store.create_bridge(room.org_id, room.id, body.chat_id, body.message_thread_id).await?;
    Ok(Reply::ok(bridge.into()))
}

/// GET /v1/rooms/{room_id}/bridges/telegram/setup-url
pub fn telegram_setup_url() -> Operation {
    Operation::declare(
        "telegram_setup_url",
        Method::GET,
        "/v1/rooms/{room_id}/bridges/telegram/setup-url",
    )
    .describe(
        "Get a link that connects a Telegram chat to the room: opening `url` in Telegram adds \
         the bot to a group and links it; `private_url` links a private chat with the bot. The \
         link works once, within an hour. Room admins only.",
    )
    .callers(Callers::ORG.and(Callers::MEMBER))
    .errors(&[NOT_CONFIGURED, (StatusCode::SERVICE_UNAVAILABLE, "unavailable")])
    .handle(setup_url)
}

async fn setup_url(
    ctx: Ctx,
    caller: Caller,
    input: RoomPath,
) -> ApiResult<Reply<TelegramSetupUrl>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "link a chat")?;
    let bot = configured(&ctx)?;
    let identity = bot.identity().ok_or_else(|| {
        ApiError::unavailable(anyhow::anyhow!("Telegram has not answered getMe yet"))
    })?;
    let (token, hash) = telegram::setup_token();
    let expires_at = now() + telegram::SETUP_TOKEN_TTL;
    ctx.store.create_setup_token(access.room.org_id, access.room.id, &hash, expires_at).await?;
    let base = format!("https://t.me/{}", identity.username);
    Ok(Reply::ok(TelegramSetupUrl {
        url: format!("{base}?startgroup={token}"),
        private_url: format!("{base}?start={token}"),
        expires_at,
    }))
}

/// GET /v1/rooms/{room_id}/bridges
pub fn list_bridges() -> Operation {
    Operation::declare("list_bridges", Method::GET, "/v1/rooms/{room_id}/bridges")
        .describe("List a room's active bridges to Telegram chats. Room admins only.")
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(list)
}

async fn list(ctx: Ctx, caller: Caller, input: RoomPath) -> ApiResult<Reply<BridgeList>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "see the bridges")?;
    let rows = ctx.store.room_bridges(access.room.id).await?;
    Ok(Reply::ok(BridgeList { bridges: rows.into_iter().map(Bridge::from).collect() }))
}

/// POST /v1/rooms/{room_id}/bridges/{bridge_id}/revoke
pub fn revoke_bridge() -> Operation {
    Operation::declare(
        "revoke_bridge",
        Method::POST,
        "/v1/rooms/{room_id}/bridges/{bridge_id}/revoke",
    )
    .describe(
        "Unlink a chat from the room: nothing more is relayed either way, from now on. Room \
             admins only.",
    )
    .callers(Callers::ORG.and(Callers::MEMBER))
    .handle(revoke)
}

async fn revoke(ctx: Ctx, caller: Caller, input: BridgePath) -> ApiResult<Reply<Deleted>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "unlink a chat")?;
    if !ctx.store.revoke_bridge(access.room.id, input.bridge_id).await? {
        return Err(ApiError::not_found("bridge of this room"));
    }
    Ok(Reply::ok(Deleted { deleted: true }))
}
