//! Server-sent event streams: a room's, an agent's, and an org's anomaly feed.
//!
//! Streams are the one part of the API that is not an operation; they follow the same event
//! log that `wait_for_events` reads. A client resumes with `Last-Event-ID` (or `?after=`) and
//! gets every event it missed, in order, then the live ones; without a cursor it starts from
//! now. The streams of one scope share one reader and one serialization of each event
//! ([`crate::fanout`]); a client that falls behind reads the log itself, as fast as it takes
//! events, so it holds up nobody else. A comment after 15 s of silence keeps proxies from
//! closing an idle stream. A member removed from a room sees its `member_left` event, then the
//! stream ends; every stream ends when the server stops. One token holds at most
//! `MAX_STREAMS_PER_TOKEN` streams per instance.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::Stream;
use kapable_sdk::comms::types::StreamEvent;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use uuid::Uuid;

use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::fanout::{self, Slot, Subscription};
use crate::follow::{self, Target};
use crate::state::Ctx;

/// The first bytes of every stream: a comment, and how long a client waits before it
/// reconnects (3 s).
const CONNECTED: &[u8] = b": connected\nretry: 3000\n\n";
/// How long a stream may stay silent before it sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const KEEP_ALIVE_COMMENT: &[u8] = b":\n\n";

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
    let Some(credential) = caller.credential_id() else {
        return Err(ApiError::unauthorized(
            "a stream needs `Authorization: Bearer <token>`, or `?ticket=` from \
             create_stream_ticket",
        ));
    };
    let scope = follow::authorize(&ctx, &caller, target).await?;
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let cursor = match last_event_id.or(params.get("after").map(String::as_str)) {
        Some(text) => Some(follow::parse_cursor("Last-Event-ID", text)?),
        None => None,
    };
    let most = ctx.settings.max_streams_per_token;
    let slot = ctx.hub.hold(credential, most).ok_or_else(|| too_many_streams(most))?;

    let (start, expired) = follow::start(&ctx.store, cursor).await?;
    let mut queue = VecDeque::from([Bytes::from_static(CONNECTED)]);
    queue.extend(expired.iter().map(|event| Bytes::from(fanout::sse_frame(event))));
    let subscription = ctx.hub.subscribe(&ctx.store, scope, start);
    let watched = watched_member(&caller, target);
    let keep_alive = Box::pin(tokio::time::sleep(KEEP_ALIVE));
    let stopping = ctx.hub.stopping();
    let state = Following {
        ctx,
        subscription,
        queue,
        watched,
        closing: false,
        keep_alive,
        last_sent: Instant::now(),
        stopping,
        _slot: slot,
    };
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        // Proxies that buffer responses (nginx) would hold events back.
        (HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, Body::from_stream(stream(state))).into_response())
}

fn too_many_streams(most: u32) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "this token already holds {most} open streams, the most one token may; close one, \
             or ask the operator to raise MAX_STREAMS_PER_TOKEN"
        ),
    )
}

/// The state of one open stream.
struct Following {
    ctx: Ctx,
    subscription: Subscription,
    queue: VecDeque<Bytes>,
    /// In a room stream of a member: the member whose `member_left` ends the stream.
    watched: Option<Watched>,
    closing: bool,
    /// Fires at the latest 15 s after the last bytes went out; re-armed only when it fires,
    /// so that a busy stream does not touch the timer for every event.
    keep_alive: Pin<Box<Sleep>>,
    last_sent: Instant,
    /// True once the server is stopping: the stream then ends.
    stopping: watch::Receiver<bool>,
    _slot: Slot,
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

fn stream(state: Following) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(bytes) = state.queue.pop_front() {
                return Some((Ok(bytes), state));
            }
            if state.closing {
                return None;
            }
            state.fill().await;
        }
    })
}

impl Following {
    /// Waits for the next events, or sends a comment when none came for a while.
    async fn fill(&mut self) {
        let frames = loop {
            tokio::select! {
                next = self.subscription.next(&self.ctx.store) => break next,
                _ = self.stopping.wait_for(|stopping| *stopping) => {
                    self.closing = true;
                    return;
                }
                () = self.keep_alive.as_mut() => {
                    let quiet_until = self.last_sent + KEEP_ALIVE;
                    let now = Instant::now();
                    if now >= quiet_until {
                        self.queue.push_back(Bytes::from_static(KEEP_ALIVE_COMMENT));
                        self.last_sent = now;
                        self.keep_alive.as_mut().reset(now + KEEP_ALIVE);
                        return;
                    }
                    self.keep_alive.as_mut().reset(quiet_until);
                }
            }
        };
        let frames = match frames {
            Ok(frames) => frames,
            Err(error) => {
                // The client reconnects with its Last-Event-ID and resumes where it was.
                tracing::warn!(%error, "a stream lost the database; closing it");
                self.closing = true;
                return;
            }
        };
        self.last_sent = Instant::now();
        self.ctx.metrics.delivered(frames.len());
        for frame in frames {
            self.closing |= self.ends_stream(&frame.event);
            self.queue.push_back(frame.bytes.clone());
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
