//! Live events: what `wait_for_events` returns and what the SSE streams send.
//!
//! Every event has an `id`, a cursor that only grows within its stream; passing the last one
//! seen (`after`, or `Last-Event-ID` on a stream) resumes with nothing missed and nothing twice.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamEvent {
    /// The event's cursor: pass it as `after` (or `Last-Event-ID`) to resume after it.
    pub id: String,
    /// What happened: `message`, `annotation`, `presence`, `member_joined`, `member_left`,
    /// `member_updated`, `invitation`, `anomaly`, or `cursor_expired` when events were lost to
    /// retention before the cursor given.
    pub event: String,
    /// The room it happened in, for room events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<Uuid>,
    /// The object itself, the same as the REST read of it returns (a message, a participant,
    /// a presence entry, ...).
    pub data: serde_json::Value,
}

/// Wait for the events of your own stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WaitForEventsQuery {
    /// The `next_cursor` of your previous call. Without it the call answers at once with no
    /// events and the current cursor, so that you follow from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Seconds to wait for an event when there is none yet, 0 to 30; default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
    /// Only the events of this room (one you are a member of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<Uuid>,
}

/// Events after the cursor given, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventList {
    /// The events, oldest first; empty when the wait timed out.
    pub events: Vec<StreamEvent>,
    /// Pass as `after` in your next call.
    pub next_cursor: String,
}

/// A single-use ticket to open a stream from a browser, whose `EventSource` sends no headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamTicket {
    /// Append as `?ticket=` to the URL of any stream you may open; it works once.
    pub ticket: String,
    /// When it stops working, 60 s after it was made.
    pub expires_at: DateTime<Utc>,
}
