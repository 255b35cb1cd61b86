//! Following the event log: who may follow what, where to start, and waiting for what comes.
//!
//! Streams (SSE) and the `wait_for_events` long poll share this module. A follower subscribes
//! to the bus before its first read, reads the log after its cursor, and when nothing is there
//! waits for a wake that concerns its scope. The log is the source of truth: a wake only says
//! "look again", so a lost wake (a lagging receiver, a reconnecting listener) costs latency,
//! never an event. An idle poll covers wakes lost without a trace.

use std::time::Duration;

use kapable_sdk::comms::types::StreamEvent;
use serde_json::json;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;
use crate::store::{EventRow, Position, Scope, Store, StoreError, Wake};

/// How often an idle follower re-reads the log even without a wake. On Postgres an event can
/// stay invisible after its wake while any older transaction in the cluster is open, so idle
/// followers look again every second there.
const IDLE_POLL: Duration = Duration::from_secs(15);
const IDLE_POLL_POSTGRES: Duration = Duration::from_secs(1);
/// Events read per batch.
pub const BATCH: i64 = 200;

/// What a caller asks to follow.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A room's stream.
    Room(Uuid),
    /// An agent's stream.
    Agent(Uuid),
    /// An org's anomaly feed.
    Anomalies(Uuid),
}

/// The scope `caller` may follow for `target`: 404 for what it may not see, 403 for a feed
/// its kind of token may not open.
pub async fn authorize(ctx: &Ctx, caller: &Caller, target: Target) -> ApiResult<Scope> {
    match target {
        Target::Room(room_id) => {
            crate::ops::room_access(ctx, caller, room_id).await?;
            Ok(Scope::Room(room_id))
        }
        Target::Agent(agent_id) => {
            let org_id = caller.org()?;
            let allowed = match caller {
                Caller::Org { .. } => ctx.store.get_agent(org_id, agent_id).await?.is_some(),
                Caller::Agent { agent_id: own, .. } => *own == agent_id,
                Caller::Participant { .. } | Caller::Channel { .. } | Caller::Anonymous => false,
            };
            if !allowed {
                return Err(ApiError::not_found("agent"));
            }
            Ok(Scope::Agent { org_id, agent_id })
        }
        Target::Anomalies(org_id) => Ok(Scope::Anomalies(caller.require_own_org(org_id)?)),
    }
}

/// Parses a cursor given as `field`.
pub fn parse_cursor(field: &str, text: &str) -> ApiResult<Position> {
    text.parse()
        .map_err(|()| ApiError::invalid_field(field, "is not an event id this API returned"))
}

/// Where a follower starts: after `cursor`, or at the head when none is given. A cursor below
/// the pruned floor yields a `cursor_expired` event first and resumes at the floor.
pub async fn start(
    store: &Store,
    cursor: Option<Position>,
) -> Result<(Position, Option<StreamEvent>), StoreError> {
    let Some(cursor) = cursor else {
        return Ok((store.head().await?, None));
    };
    let floor = store.event_floor().await?;
    if cursor >= floor {
        return Ok((cursor, None));
    }
    let expired = StreamEvent {
        id: floor.to_string(),
        event: "cursor_expired".into(),
        room_id: None,
        data: json!({
            "message": "events after this cursor were deleted by retention; resuming at the oldest kept",
            "cursor": cursor.to_string(),
            "resumed_at": floor.to_string(),
        }),
    };
    Ok((floor, Some(expired)))
}

/// A follower of one scope of the log.
#[derive(Debug)]
pub struct Follower {
    scope: Scope,
    cursor: Position,
    wakes: Receiver<Wake>,
    backoff_on_miss: bool,
    idle_poll: Duration,
}

impl Follower {
    /// A follower of `scope` after `cursor`, subscribed to the bus from now on.
    pub fn new(store: &Store, scope: Scope, cursor: Position) -> Self {
        // On Postgres a wake can arrive before the event is visible (an older transaction is
        // still open), so a read that finds nothing after a wake is retried shortly.
        let backoff_on_miss = store.is_postgres();
        let idle_poll = if backoff_on_miss { IDLE_POLL_POSTGRES } else { IDLE_POLL };
        Self { scope, cursor, wakes: store.bus().subscribe(), backoff_on_miss, idle_poll }
    }

    /// The position after the last event returned.
    pub fn cursor(&self) -> Position {
        self.cursor
    }

    /// The next events, oldest first; waits until `deadline` (forever when `None`) for some to
    /// arrive. Empty only when the deadline passed.
    pub async fn next(
        &mut self,
        store: &Store,
        deadline: Option<Instant>,
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut retry: Option<Duration> = None;
        loop {
            let events = store.events_after(self.scope, self.cursor, BATCH).await?;
            if let Some(last) = events.last() {
                self.cursor = last.position();
                return Ok(events);
            }
            let wait = retry.unwrap_or(self.idle_poll);
            let woke = tokio::select! {
                woke = self.wait_for_wake() => woke,
                () = tokio::time::sleep(wait) => false,
                () = sleep_until(deadline) => return Ok(Vec::new()),
            };
            retry = match (woke, retry) {
                (true, _) if self.backoff_on_miss => Some(Duration::from_millis(10)),
                (false, Some(last)) if last < Duration::from_secs(1) => Some(last * 2),
                _ => None,
            };
        }
    }

    /// Waits for a wake concerning this follower's scope. True when one came; a lagging
    /// receiver also returns true, since it may have missed one.
    async fn wait_for_wake(&mut self) -> bool {
        loop {
            match self.wakes.recv().await {
                Ok(wake) if wake.concerns(&self.scope) => return true,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return true,
                // The bus lives as long as the store; without it, fall back to polling.
                Err(RecvError::Closed) => return std::future::pending().await,
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The wire form of an event read from the log.
pub fn to_wire(event: &EventRow) -> StreamEvent {
    StreamEvent {
        id: event.position().to_string(),
        event: event.kind.clone(),
        room_id: event.room_id,
        data: event.data().clone(),
    }
}

/// Deletes events older than the retention (`--event-retention-secs`) and spent stream
/// tickets, once at start and then every hour, until the process ends.
pub async fn keep_retention(ctx: Ctx) {
    let retention = chrono::Duration::seconds(i64::from(ctx.settings.event_retention_secs));
    let mut ticks = tokio::time::interval(Duration::from_secs(3600));
    loop {
        ticks.tick().await;
        let now = crate::store::now();
        match ctx.store.prune_events(now - retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned events past their retention"),
            Err(error) => tracing::warn!(%error, "pruning events failed; retrying in an hour"),
        }
        if let Err(error) = ctx.store.prune_tickets(now - chrono::Duration::hours(1)).await {
            tracing::warn!(%error, "pruning stream tickets failed");
        }
    }
}
