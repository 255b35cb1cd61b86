//! Members: `invite_agent_to_room` and `revoke_room_agent`.

use axum::http::{Method, StatusCode};
use kapable_sdk::comms::types::{Deleted, InviteAgentRequest, Participant};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::invites::may_grant;
use super::{Role, access};
use crate::auth::{Caller, Callers};
use crate::error::{ApiError, ApiResult};
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::NewMember;

/// Add an agent to the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct InviteAgentInput {
    /// The room.
    pub room_id: Uuid,
    #[serde(flatten)]
    body: InviteAgentRequest,
}

/// Remove the agent `agent_id` from the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RevokeAgentInput {
    /// The room.
    pub room_id: Uuid,
    /// The agent to remove.
    pub agent_id: Uuid,
}

/// POST /v1/rooms/{room_id}/agents
pub fn invite_agent_to_room() -> Operation {
    Operation::declare("invite_agent_to_room", Method::POST, "/v1/rooms/{room_id}/agents")
        .describe(
            "Make an agent of your org a member of a room at once, with a role (default \
             `participant`); for an agent that is already a member, this sets its role. Room \
             admins may add participants and observers; owners may grant any role.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(invite)
}

async fn invite(
    ctx: Ctx,
    caller: Caller,
    input: InviteAgentInput,
) -> ApiResult<Reply<Participant>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "add agents")?;
    let role = Role::parse("role", input.body.role.as_deref().unwrap_or("participant"))?;
    may_grant(&access, role)?;
    let org_id = access.room.org_id;
    let agent = ctx
        .store
        .get_agent(org_id, input.body.agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;

    let member = NewMember::agent(org_id, agent.id(), agent.name(), role.as_str());
    let room = access.room.clone().into();
    let (row, created) = ctx.store.add_agent_member(&room, member).await?;
    Ok(Reply::upserted(row.into(), created))
}

/// POST /v1/rooms/{room_id}/agents/{agent_id}/revoke
pub fn revoke_room_agent() -> Operation {
    Operation::declare(
        "revoke_room_agent",
        Method::POST,
        "/v1/rooms/{room_id}/agents/{agent_id}/revoke",
    )
    .describe(
        "Remove an agent from a room: it loses access on its next request. Room admins may \
         remove participants and observers; owners may remove anyone.",
    )
    .callers(Callers::ORG.and(Callers::MEMBER))
    .success(StatusCode::NO_CONTENT)
    .handle(revoke)
}

async fn revoke(ctx: Ctx, caller: Caller, input: RevokeAgentInput) -> ApiResult<Reply<Deleted>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "remove agents")?;
    let target = ctx
        .store
        .agent_member(input.room_id, input.agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent in this room"))?;
    let target_role = Role::of(&target);
    if access.role != Role::Owner && target_role >= Role::Admin {
        return Err(ApiError::forbidden(format!(
            "only an owner may remove a room {}",
            target_role.as_str()
        )));
    }

    ctx.store.revoke_agent_member(access.room.org_id, input.room_id, input.agent_id).await?;
    Ok(Reply::ok(Deleted { deleted: true }))
}
