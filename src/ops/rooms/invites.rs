//! Invites: `create_room_invite`, `list_room_invites`, `revoke_room_invite`, and `join_room`.
//!
//! An invite token is a bearer capability: whoever holds it may join until it expires, is
//! revoked or is used up. An agent of the room's org joins as itself; anyone else joins as a
//! guest and receives a participant token that works in that room only.

use axum::http::{Method, StatusCode};
use chrono::Duration;
use kapable_sdk::comms::types::{
    CreateInviteRequest, Deleted, Invite, InviteCreated, InviteList, JoinRoomRequest,
    JoinRoomResponse, PageQuery, Participant,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::{Access, Role, access};
use crate::auth::{Caller, Callers, Secret, TokenKind};
use crate::error::{ApiError, ApiResult};
use crate::ops::validate;
use crate::pagination;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::{JoinAs, Joined, NewInvite};

const DEFAULT_EXPIRES_IN: i64 = 7 * 24 * 3600;
const EXPIRES_IN_RANGE: std::ops::RangeInclusive<i64> = 60..=365 * 24 * 3600;

/// Create an invite to the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateInviteInput {
    /// The room to invite into.
    pub room_id: Uuid,
    #[serde(flatten)]
    body: CreateInviteRequest,
}

/// List the active invites of the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListInvitesInput {
    /// The room.
    pub room_id: Uuid,
    #[serde(flatten)]
    page: PageQuery,
}

/// Revoke the invite `invite_id` of the room `room_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RevokeInviteInput {
    /// The room.
    pub room_id: Uuid,
    /// The invite to revoke.
    pub invite_id: Uuid,
}

/// Join a room with the invite `token`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct JoinRoomInput {
    /// The invite token (`inv_...`).
    pub token: String,
    #[serde(flatten)]
    body: JoinRoomRequest,
}

/// Checks that the caller may hand out `role`: owners may grant any role, others only roles
/// weaker than their own.
pub(super) fn may_grant(access: &Access, role: Role) -> ApiResult<()> {
    if access.role == Role::Owner || role < access.role {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "a room {} may grant only weaker roles than its own; `{}` needs an owner",
        access.role.as_str(),
        role.as_str()
    )))
}

/// POST /v1/rooms/{room_id}/invites
pub fn create_room_invite() -> Operation {
    Operation::declare("create_room_invite", Method::POST, "/v1/rooms/{room_id}/invites")
        .describe(
            "Create an invite token for a room (room admins and owners). Whoever holds the \
             token joins with `join_room`: an agent of this org as itself, anyone else as a \
             guest. The plaintext `token` is returned once. Defaults: role `participant`, \
             expires in 7 days, unlimited uses.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(create)
}

async fn create(
    ctx: Ctx,
    caller: Caller,
    input: CreateInviteInput,
) -> ApiResult<Reply<InviteCreated>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "invite")?;
    let body = input.body;
    let role = Role::parse("role", body.role.as_deref().unwrap_or("participant"))?;
    may_grant(&access, role)?;
    let expires_in = body.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
    if !EXPIRES_IN_RANGE.contains(&expires_in) {
        let message = format!("must be between 60 and 31536000 seconds, got {expires_in}");
        return Err(ApiError::invalid_field("expires_in", message));
    }
    if body.max_uses.is_some_and(|uses| uses < 1) {
        return Err(ApiError::invalid_field(
            "max_uses",
            "must be at least 1, or absent for unlimited",
        ));
    }

    let secret = Secret::generate(TokenKind::Invite);
    let invite = NewInvite {
        org_id: access.room.org_id,
        room_id: access.room.id,
        role: role.as_str().to_owned(),
        prefix: secret.prefix(),
        hash: secret.hash(),
        max_uses: body.max_uses,
        expires_at: crate::store::now() + Duration::seconds(expires_in),
    };
    let row = ctx.store.create_invite(&invite).await?;
    Ok(Reply::ok(InviteCreated { invite: row.into(), token: secret.expose().to_owned() }))
}

/// GET /v1/rooms/{room_id}/invites
pub fn list_room_invites() -> Operation {
    Operation::declare("list_room_invites", Method::GET, "/v1/rooms/{room_id}/invites")
        .describe(
            "List a room's invites that still admit someone (not expired, revoked or used up), \
             oldest first, without their tokens. Room admins and owners only.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(list)
}

async fn list(ctx: Ctx, caller: Caller, input: ListInvitesInput) -> ApiResult<Reply<InviteList>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "list invites")?;
    let (after, limit) = pagination::page_of(input.page.cursor.as_deref(), input.page.limit)?;

    let rows = ctx.store.active_invites(input.room_id, after, limit.fetch()).await?;
    let mut invites: Vec<Invite> = rows.into_iter().map(Invite::from).collect();
    let next_cursor = pagination::finish(&mut invites, limit, |invite| invite.id);
    Ok(Reply::ok(InviteList { invites, next_cursor }))
}

/// POST /v1/rooms/{room_id}/invites/{invite_id}/revoke
pub fn revoke_room_invite() -> Operation {
    Operation::declare(
        "revoke_room_invite",
        Method::POST,
        "/v1/rooms/{room_id}/invites/{invite_id}/revoke",
    )
    .describe(
        "Revoke a room invite: its token admits nobody from now on. Those who already joined \
         stay. Room admins and owners only.",
    )
    .callers(Callers::ORG.and(Callers::MEMBER))
    .success(StatusCode::NO_CONTENT)
    .handle(revoke)
}

async fn revoke(ctx: Ctx, caller: Caller, input: RevokeInviteInput) -> ApiResult<Reply<Deleted>> {
    let access = access(&ctx, &caller, input.room_id).await?;
    access.require(Role::Admin, "revoke invites")?;
    if !ctx.store.revoke_invite(input.room_id, input.invite_id).await? {
        return Err(ApiError::not_found("invite"));
    }
    Ok(Reply::ok(Deleted { deleted: true }))
}

/// POST /v1/rooms/join/{token}
pub fn join_room() -> Operation {
    Operation::declare("join_room", Method::POST, "/v1/rooms/join/{token}")
        .describe(
            "Join a room with an invite token. With an agent key of the room's org you join as \
             that agent (joining again changes nothing). Otherwise you join as a guest named \
             `display_name` and receive a `participant_token` (pt_...) that works for this \
             room only: use it as your bearer token, or connect over MCP at /v1/mcp/<token>. \
             An expired, revoked or used-up invite answers `invite_expired`: ask a room admin \
             for a new one.",
        )
        .callers(Callers::ANYONE)
        .errors(&[(StatusCode::GONE, "invite_expired")])
        .handle(join)
}

async fn join(
    ctx: Ctx,
    caller: Caller,
    input: JoinRoomInput,
) -> ApiResult<Reply<JoinRoomResponse>> {
    let hash = match crate::auth::PresentedToken::parse(&input.token) {
        Ok(token) if token.kind == TokenKind::Invite => token.hash(),
        _ => return Err(ApiError::not_found("invite")),
    };
    let guest_name = input.body.display_name.as_deref().unwrap_or("guest");
    let guest_name = validate::name("display_name", guest_name, validate::NAME_MAX)?;
    let guest_token = Secret::generate(TokenKind::Participant);
    let agent = match caller {
        Caller::Agent { org_id, agent_id, agent_name, .. } => Some((org_id, agent_id, agent_name)),
        _ => None,
    };

    let who =
        JoinAs { agent, guest_name: guest_name.to_owned(), guest_token_hash: guest_token.hash() };
    let (org_id, room_id, member, created) = match ctx.store.join_with_invite(&hash, who).await? {
        Joined::Unknown => return Err(ApiError::not_found("invite")),
        Joined::Expired => return Err(invite_expired()),
        Joined::Already { org_id, room_id, member } => (org_id, room_id, member, false),
        Joined::New { org_id, room_id, member } => (org_id, room_id, member, true),
    };

    let room =
        ctx.store.get_room(org_id, room_id).await?.ok_or_else(|| ApiError::not_found("room"))?;
    let participant_token = (member.kind == "guest").then(|| guest_token.expose().to_owned());
    let answer = JoinRoomResponse {
        room: room.into(),
        participant: Participant::from(member),
        participant_token,
    };
    Ok(Reply::upserted(answer, created))
}

fn invite_expired() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "invite_expired",
        "this invite has expired, was revoked or is used up; ask a room admin for a new one",
    )
}
