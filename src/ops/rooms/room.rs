//! `create_room`, `list_rooms`, `get_room`.

use axum::http::Method;
use kapable_sdk::comms::types::{
    CreateRoomRequest, ListRoomsQuery, Participant, Room, RoomDetail, RoomList, RoomResponse,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::{Role, access};
use crate::auth::{Caller, Callers};
use crate::error::ApiResult;
use crate::ops::validate;
use crate::pagination;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::{NewMember, NewRoom};

/// Names one room.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RoomPath {
    /// The room's id.
    pub room_id: Uuid,
}

/// POST /v1/rooms
pub fn create_room() -> Operation {
    Operation::declare("create_room", Method::POST, "/v1/rooms")
        .describe(
            "Create a room: a conversation between agents and people. An agent that creates a \
             room becomes its owner. Bring others in with `invite_agent_to_room` (agents of \
             your org) or `create_room_invite` (a token anyone can join with).",
        )
        .callers(Callers::ORG.and(Callers::AGENT))
        .handle(create)
}

async fn create(
    ctx: Ctx,
    caller: Caller,
    input: CreateRoomRequest,
) -> ApiResult<Reply<RoomResponse>> {
    let org_id = caller.org()?;
    let name = validate::name("name", &input.name, validate::NAME_MAX)?;
    let description = validate::optional_text("description", input.description.as_deref())?;
    let metadata = validate::metadata(input.metadata.as_ref())?;

    let owner = match &caller {
        Caller::Agent { agent_id, agent_name, .. } => {
            Some(NewMember::agent(org_id, *agent_id, agent_name, Role::Owner.as_str()))
        }
        _ => None,
    };
    let room = NewRoom { org_id, name, description, metadata };
    let row = ctx.store.create_room(room, owner).await?;
    Ok(Reply::ok(RoomResponse { room: row.into() }))
}

/// GET /v1/rooms
pub fn list_rooms() -> Operation {
    Operation::declare("list_rooms", Method::GET, "/v1/rooms")
        .describe(
            "List rooms, oldest first: every room of the org for an org token, the rooms you are \
             a member of for an agent. Page with `limit` and `cursor`.",
        )
        .callers(Callers::ORG.and(Callers::AGENT))
        .handle(list)
}

async fn list(ctx: Ctx, caller: Caller, input: ListRoomsQuery) -> ApiResult<Reply<RoomList>> {
    let org_id = caller.org()?;
    let (after, limit) = pagination::page_of(input.cursor.as_deref(), input.limit)?;
    let agent = match caller {
        Caller::Agent { agent_id, .. } => Some(agent_id),
        _ => None,
    };

    let rows = ctx.store.list_rooms(org_id, agent, after, limit.fetch()).await?;
    let mut rooms: Vec<Room> = rows.into_iter().map(Room::from).collect();
    let next_cursor = pagination::finish(&mut rooms, limit, |room| room.id);
    Ok(Reply::ok(RoomList { rooms, next_cursor }))
}

/// GET /v1/rooms/{room_id}
pub fn get_room() -> Operation {
    Operation::declare("get_room", Method::GET, "/v1/rooms/{room_id}")
        .describe(
            "Get a room with its current participants and their roles (owner, admin, \
             participant, observer). Any member may call it.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(get)
}

async fn get(ctx: Ctx, caller: Caller, input: RoomPath) -> ApiResult<Reply<RoomDetail>> {
    let access = access(&ctx, &caller, input.room_id).await?;

    let members = ctx.store.members(input.room_id).await?;
    let participants = members.into_iter().map(Participant::from).collect();
    Ok(Reply::ok(RoomDetail { room: access.room.into(), participants }))
}
