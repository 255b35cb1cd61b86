//! Server-sent event streams: a room's, an agent's, and an org's anomaly feed.
//!
//! Streams are the one part of the API that is not an operation; they follow the same event
//! log that `wait_for_events` reads. A client resumes with `Last-Event-ID` (or `?after=`) and
//! gets every event it missed, in order, then the live ones; without a cursor it starts from
//! now. Events are read from the log only as fast as the client takes them, so a slow client
//! holds one batch in memory at most. A comment every 15 s keeps proxies from closing an idle
//! stream. A member removed from a room sees its `member_left` event, then the stream ends.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use kapable_sdk::comms::types::StreamEvent;
use uuid::Uuid;

use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::follow::{self, Follower, Target};
use crate::state::Ctx;

/// How long a client waits before reconnecting, as advised on connect.
const RETRY: Duration = Duration::from_secs(3);
/// How often an idle stream sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/v1/rooms/{room_id}/stream", get(room))
        .route("/v1/agents/{agent_id}/stream", get(agent))
        .route("/v1/orgs/{org_id}/anomaly-feed", get(anomalies))
}

type Params = Query<HashMap<String, String>>;

/// GET /v1/rooms/{room_id}/stream
async fn room(
    State(ctx): State<Ctx>,
    id: Result<Path<Uuid>, PathRejection>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    respond(async { open(ctx, Target::Room(path_id(id)?), &params, &headers).await }).await
}

/// GET /v1/agents/{agent_id}/stream
async fn agent(
    State(ctx): State<Ctx>,
    id: Result<Path<Uuid>, PathRejection>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    respond(async { open(ctx, Target::Agent(path_id(id)?), &params, &headers).await }).await
}

/// GET /v1/orgs/{org_id}/anomaly-feed
async fn anomalies(
    State(ctx): State<Ctx>,
    id: Result<Path<Uuid>, PathRejection>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    respond(async { open(ctx, Target::Anomalies(path_id(id)?), &params, &headers).await }).await
}

async fn respond(opened: impl Future<Output = ApiResult<Response>>) -> Response {
    opened.await.unwrap_or_else(IntoResponse::into_response)
}

fn path_id(id: Result<Path<Uuid>, PathRejection>) -> ApiResult<Uuid> {
    id.map(|Path(id)| id).map_err(|e| ApiError::invalid(e.body_text()))
}

/// Authenticates, authorizes and positions a stream, then serves it.
async fn open(
    ctx: Ctx,
    target: Target,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let caller = match params.get("ticket") {
        Some(ticket) => ctx.auth.redeem_ticket(&ctx.store, ticket).await?,
        None => ctx.auth.authenticate(&ctx.store, auth::bearer(headers)?).await?,
    };
    if caller == Caller::Anonymous {
        return Err(ApiError::unauthorized(
            "a stream needs `Authorization: Bearer <token>` or `?ticket=` from create_stream_ticket",
        ));
    }
    let scope = follow::authorize(&ctx, &caller, target).await?;
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let cursor = match last_event_id.or(params.get("after").map(String::as_str)) {
        Some(text) => Some(follow::parse_cursor("Last-Event-ID", text)?),
        None => None,
    };

    let (start, expired) = follow::start(&ctx.store, cursor).await?;
    let mut queue = VecDeque::from([Event::default().retry(RETRY).comment("connected")]);
    queue.extend(expired.iter().map(sse_event));
    let follower = Follower::new(&ctx.store, scope, start);
    let watched = watched_member(&caller, target);
    let events = stream(Following { ctx, follower, queue, watched, closing: false });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

/// The state of one open stream.
struct Following {
    ctx: Ctx,
    follower: Follower,
    queue: VecDeque<Event>,
    /// In a room stream of a member: the member whose `member_left` ends the stream.
    watched: Option<Watched>,
    closing: bool,
}

/// Whose removal from the room ends a room stream.
#[derive(Debug, Clone, Copy)]
enum Watched {
    Agent(Uuid),
    Participant(Uuid),
}

fn watched_member(caller: &Caller, target: Target) -> Option<Watched> {
    match (caller, target) {
        (Caller::Agent { agent_id, .. }, Target::Room(_)) => Some(Watched::Agent(*agent_id)),
        (Caller::Participant { member_id, .. }, Target::Room(_)) => {
            Some(Watched::Participant(*member_id))
        }
        _ => None,
    }
}

fn stream(state: Following) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.queue.pop_front() {
                return Some((Ok(event), state));
            }
            if state.closing {
                return None;
            }
            state.fill().await;
        }
    })
}

impl Following {
    /// Waits for the next batch of events and queues them.
    async fn fill(&mut self) {
        let batch = match self.follower.next(&self.ctx.store, None).await {
            Ok(batch) => batch,
            Err(error) => {
                // The client reconnects with its Last-Event-ID and resumes where it was.
                tracing::warn!(%error, "a stream lost the database; closing it");
                self.closing = true;
                return;
            }
        };
        for row in &batch {
            let event = follow::to_wire(row);
            self.closing |= self.ends_stream(&event);
            self.queue.push_back(sse_event(&event));
            if self.closing {
                break;
            }
        }
    }

    fn ends_stream(&self, event: &StreamEvent) -> bool {
        if event.event != "member_left" {
            return false;
        }
        let field = |name: &str| event.data.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        match self.watched {
            Some(Watched::Agent(id)) => field("agent_id") == Some(id.to_string()),
            Some(Watched::Participant(id)) => field("id") == Some(id.to_string()),
            None => false,
        }
    }
}

fn sse_event(event: &StreamEvent) -> Event {
    Event::default().id(event.id.clone()).event(event.event.clone()).data(event.data.to_string())
}
