//! `wait_for_events` (the long poll an LLM agent keeps up with) and `create_stream_ticket`.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::Duration as Age;
use kapable_sdk::comms::types::{EventList, StreamTicket, WaitForEventsQuery};
use tokio::time::Instant;

use super::NoInput;
use crate::auth::{Caller, Callers, Secret, TokenKind};
use crate::error::{ApiError, ApiResult};
use crate::follow::{self, Follower, Target};
use crate::registry::{Operation, Reply};
use crate::state::Ctx;
use crate::store::TicketRow;

const DEFAULT_TIMEOUT_S: u32 = 20;
const MAX_TIMEOUT_S: u32 = 30;
const TICKET_LIFETIME_S: i64 = 60;

/// GET /v1/events
pub fn wait_for_events() -> Operation {
    Operation::declare("wait_for_events", Method::GET, "/v1/events")
        .describe(
            "Wait for what happens around you: messages, annotations, presence and membership \
             changes in your rooms, and invitations. Call it first without `after` to get the \
             current cursor, then call it again and again with the `next_cursor` of the \
             previous answer: it returns at once when events are waiting, otherwise it waits \
             up to `timeout_s` seconds (default 20, at most 30) and may return no events. \
             Nothing is missed or repeated between calls. `room_id` narrows it to one room.",
        )
        .callers(Callers::MEMBER)
        .handle(wait)
}

async fn wait(ctx: Ctx, caller: Caller, input: WaitForEventsQuery) -> ApiResult<Reply<EventList>> {
    let timeout = input.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
    if timeout > MAX_TIMEOUT_S {
        let message = format!("must be between 0 and {MAX_TIMEOUT_S} seconds, got {timeout}");
        return Err(ApiError::invalid_field("timeout_s", message));
    }
    let after = input.after.as_deref().map(|c| follow::parse_cursor("after", c)).transpose()?;
    let target = match (&caller, input.room_id) {
        (_, Some(room_id)) => Target::Room(room_id),
        (Caller::Participant { room_id, .. }, None) => Target::Room(*room_id),
        (Caller::Agent { agent_id, .. }, None) => Target::Agent(*agent_id),
        _ => {
            return Err(ApiError::forbidden("`wait_for_events` follows an agent or a room member"));
        }
    };
    let scope = follow::authorize(&ctx, &caller, target).await?;

    let (cursor, expired) = follow::start(&ctx.store, after).await?;
    if after.is_none() || expired.is_some() {
        let events = expired.into_iter().collect();
        return Ok(Reply::ok(EventList { events, next_cursor: cursor.to_string() }));
    }
    let mut follower = Follower::new(&ctx.store, scope, cursor);
    let deadline = Instant::now() + Duration::from_secs(u64::from(timeout));
    let events = follower.next(&ctx.store, Some(deadline)).await?;
    Ok(Reply::ok(EventList {
        events: events.iter().map(follow::to_wire).collect(),
        next_cursor: follower.cursor().to_string(),
    }))
}

/// POST /v1/stream-tickets
pub fn create_stream_ticket() -> Operation {
    Operation::declare("create_stream_ticket", Method::POST, "/v1/stream-tickets")
        .describe(
            "Get a single-use ticket, valid for 60 seconds, that opens any stream you may open \
             as `?ticket=...`; for browsers, whose EventSource cannot send an Authorization \
             header.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .success(StatusCode::CREATED)
        .handle(ticket)
}

async fn ticket(ctx: Ctx, caller: Caller, _input: NoInput) -> ApiResult<Reply<StreamTicket>> {
    let who = match &caller {
        Caller::Org { org_id, token_id } => ticket_row(*org_id, "org", *token_id, *token_id, None),
        Caller::Agent { org_id, agent_id, key_id, .. } => {
            ticket_row(*org_id, "agent", *agent_id, *key_id, None)
        }
        Caller::Participant { org_id, room_id, member_id } => {
            ticket_row(*org_id, "participant", *member_id, *member_id, Some(*room_id))
        }
        Caller::Channel { .. } | Caller::Anonymous => {
            return Err(ApiError::forbidden(
                "a stream ticket needs an org, agent or participant token",
            ));
        }
    };

    let secret = Secret::generate(TokenKind::Ticket);
    let expires_at = crate::store::now() + Age::seconds(TICKET_LIFETIME_S);
    ctx.store.create_ticket(&secret.hash(), &who, expires_at).await?;
    Ok(Reply::ok(StreamTicket { ticket: secret.expose().to_owned(), expires_at }))
}

fn ticket_row(
    org_id: uuid::Uuid,
    kind: &str,
    subject_id: uuid::Uuid,
    credential: uuid::Uuid,
    room_id: Option<uuid::Uuid>,
) -> TicketRow {
    TicketRow { org_id, kind: kind.to_owned(), subject_id, credential, room_id }
}
