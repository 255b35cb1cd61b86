//! Presence: `heartbeat` and `room_presence`.
//!
//! An agent reports itself with heartbeats; it is online while its last heartbeat is younger
//! than the presence TTL (`--presence-ttl-secs`, 60 s by default), computed on every read.

use axum::http::{Method, StatusCode};
use chrono::Duration;
use kapable_sdk::comms::types::{HeartbeatRequest, PresenceEntry, RoomPresence};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::access;
use super::room::RoomPath;
use crate::auth::{Caller, Callers};
use crate::error::{ApiError, ApiResult};
use crate::ops::validate;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;

const NOTE_MAX: usize = 280;

/// Report the presence of the agent `agent_id` in the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct HeartbeatInput {
    /// The room.
    pub room_id: Uuid,
    /// The agent reporting; an agent key may report only for itself.
    pub agent_id: Uuid,
    #[serde(flatten)]
    body: HeartbeatRequest,
}

/// POST /v1/rooms/{room_id}/agents/{agent_id}/heartbeat
pub fn heartbeat() -> Operation {
    Operation::declare("heartbeat", Method::POST, "/v1/rooms/{room_id}/agents/{agent_id}/heartbeat")
        .describe(
            "Tell a room you are here: `status` is `active` (default), `idle` or `busy`, with an \
         optional `note` on what you are doing. You count as online while your last heartbeat \
         is younger than the presence TTL (60 s by default), so send one about every 30 s \
         while you work in the room. An agent reports only for itself.",
        )
        .callers(Callers::ORG.and(Callers::AGENT))
        .success(StatusCode::OK)
        .handle(beat)
}

async fn beat(ctx: Ctx, caller: Caller, input: HeartbeatInput) -> ApiResult<Reply<PresenceEntry>> {
    if let Caller::Agent { agent_id, .. } = &caller
        && *agent_id != input.agent_id
    {
        return Err(ApiError::forbidden("an agent may send heartbeats only for itself"));
    }
    let access = access(&ctx, &caller, input.room_id).await?;
    let status = input.body.status.as_deref().unwrap_or("active");
    if !matches!(status, "active" | "idle" | "busy") {
        let message = format!("`{status}` is not a status; use active, idle or busy");
        return Err(ApiError::invalid_field("status", message));
    }
    let note =
        input.body.note.as_deref().map(|n| validate::text("note", n, NOTE_MAX)).transpose()?;
    if ctx.store.agent_member(input.room_id, input.agent_id).await?.is_none() {
        return Err(ApiError::not_found("agent in this room"));
    }

    let org_id = access.room.org_id;
    let row = ctx.store.heartbeat(org_id, input.room_id, input.agent_id, status, note).await?;
    Ok(Reply::ok(row.into_entry(online_since(&ctx))))
}

/// GET /v1/rooms/{room_id}/presence
pub fn room_presence() -> Operation {
    Operation::declare("room_presence", Method::GET, "/v1/rooms/{room_id}/presence")
        .describe(
            "Who is here: each member agent's last reported status and note, when it was last \
             seen, and whether it is online (a heartbeat within the presence TTL).",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(presence)
}

async fn presence(ctx: Ctx, caller: Caller, input: RoomPath) -> ApiResult<Reply<RoomPresence>> {
    access(&ctx, &caller, input.room_id).await?;

    let rows = ctx.store.presence(input.room_id).await?;
    let since = online_since(&ctx);
    Ok(Reply::ok(RoomPresence {
        presence: rows.into_iter().map(|r| r.into_entry(since)).collect(),
    }))
}

/// Heartbeats after this moment count as online.
pub fn online_since(ctx: &Ctx) -> chrono::DateTime<chrono::Utc> {
    crate::store::now() - Duration::seconds(i64::from(ctx.settings.presence_ttl_secs))
}

/// Marks agents whose heartbeats stopped as gone offline, a few times per TTL, until the
/// process ends. Runs on every instance; the update marks each agent once.
pub async fn sweep_presence(ctx: Ctx) {
    let ttl = u64::from(ctx.settings.presence_ttl_secs);
    let period = std::time::Duration::from_secs((ttl / 4).clamp(1, 15));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match ctx.store.sweep_offline(online_since(&ctx)).await {
            Ok(0) => {}
            Ok(gone) => tracing::debug!(gone, "agents went offline"),
            Err(error) => tracing::warn!(%error, "the presence sweep failed; retrying"),
        }
    }
}
