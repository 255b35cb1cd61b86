//! Fan-out: one reader of the log per followed scope, its events serialized once and shared.
//!
//! Every open stream of a scope (a room, an agent, an org's anomalies) subscribes to that
//! scope's [`Feed`]. The feed's task reads the log as a [`Follower`] does, turns each event into
//! its SSE frame once, and broadcasts the batch; a thousand subscribers of a room cost one read
//! and one serialization per batch, and each subscriber only clones a reference-counted buffer.
//!
//! The log stays the source of truth. A subscriber reads the log itself until it has caught up,
//! and again whenever a batch does not follow on from its own cursor: after it lagged behind the
//! broadcast (a slow client), or when it joined while the feed was ahead of it. So a slow
//! subscriber never slows the feed or its other subscribers, and it never skips an event. The
//! feed's task ends when its last subscriber leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use kapable_sdk::comms::types::StreamEvent;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::follow::{self, Follower};
use crate::store::{Position, Scope, Store, StoreError};

/// Batches a feed holds for subscribers that have not taken them yet; one that falls further
/// behind reads the log itself.
const BACKLOG: usize = 64;

/// One event, ready to be written to any stream.
#[derive(Debug)]
pub struct Frame {
    /// The event.
    pub event: StreamEvent,
    /// Where it stands in the log.
    pub position: Position,
    /// Its SSE frame: `id`, `event` and `data` lines.
    pub bytes: Bytes,
}

impl Frame {
    /// The frame of an event read from the log.
    pub fn new(row: &crate::store::EventRow) -> Frame {
        let event = follow::to_wire(row);
        let bytes = Bytes::from(sse_frame(&event));
        Frame { event, position: row.position(), bytes }
    }
}

/// The SSE text of an event. Its data is compact JSON, which never holds a line break.
pub fn sse_frame(event: &StreamEvent) -> String {
    format!("id: {}\nevent: {}\ndata: {}\n\n", event.id, event.event, event.data)
}

/// Consecutive events of one scope: every event of the scope after `from`, up to `to`.
#[derive(Debug)]
struct Batch {
    from: Position,
    to: Position,
    frames: Vec<Arc<Frame>>,
}

/// The feeds of this process, one per scope someone follows, and the streams each credential
/// holds open.
#[derive(Debug, Default)]
pub struct Hub {
    feeds: Mutex<HashMap<Scope, Weak<Feed>>>,
    holders: Arc<Mutex<HashMap<Uuid, u32>>>,
    /// Turns true when the server stops: every stream then ends.
    stopping: watch::Sender<bool>,
}

/// One open stream counted against its credential, until dropped.
#[derive(Debug)]
pub struct Slot {
    credential: Uuid,
    holders: Arc<Mutex<HashMap<Uuid, u32>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut holders = self.holders.lock().expect("no panic while holding the counts");
        if let Some(open) = holders.get_mut(&self.credential) {
            *open -= 1;
            if *open == 0 {
                holders.remove(&self.credential);
            }
        }
    }
}

/// A scope's reader and the broadcast of what it reads.
#[derive(Debug)]
struct Feed {
    batches: broadcast::Sender<Arc<Batch>>,
    reader: tokio::task::AbortHandle,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Hub {
    /// A subscription to `scope` for a follower whose cursor is `cursor`.
    pub fn subscribe(&self, store: &Store, scope: Scope, cursor: Position) -> Subscription {
        let feed = self.feed(store, scope);
        // Subscribed before the first read of the log, so nothing falls between the two.
        let batches = feed.batches.subscribe();
        Subscription { scope, cursor, catching_up: true, batches, _feed: feed }
    }

    /// Counts one more open stream for `credential`; `None` when it already holds `most`.
    pub fn hold(&self, credential: Uuid, most: u32) -> Option<Slot> {
        let mut holders = self.holders.lock().expect("no panic while holding the counts");
        let open = holders.entry(credential).or_default();
        if *open >= most {
            return None;
        }
        *open += 1;
        Some(Slot { credential, holders: Arc::clone(&self.holders) })
    }

    /// Ends every open stream, and every one opened from now on, after what it has queued:
    /// the server is stopping, and its clients resume elsewhere with their `Last-Event-ID`.
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    /// What a stream watches to learn that the server is stopping.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// How many streams are open on this instance.
    pub fn open_streams(&self) -> u64 {
        let holders = self.holders.lock().expect("no panic while holding the counts");
        holders.values().map(|open| u64::from(*open)).sum()
    }

    fn feed(&self, store: &Store, scope: Scope) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().expect("no panic while holding the feeds");
        if let Some(feed) = feeds.get(&scope).and_then(Weak::upgrade) {
            return feed;
        }
        feeds.retain(|_, feed| feed.strong_count() > 0);
        let (batches, _) = broadcast::channel(BACKLOG);
        let reader = tokio::spawn(read(store.clone(), scope, batches.clone())).abort_handle();
        let feed = Arc::new(Feed { batches, reader });
        feeds.insert(scope, Arc::downgrade(&feed));
        feed
    }

    /// How many scopes have a feed now.
    pub fn feeds(&self) -> usize {
        let feeds = self.feeds.lock().expect("no panic while holding the feeds");
        feeds.values().filter(|feed| feed.strong_count() > 0).count()
    }
}

/// Reads the scope's log from its head on and broadcasts each batch, until aborted.
async fn read(store: Store, scope: Scope, batches: broadcast::Sender<Arc<Batch>>) {
    // Without the head, starting from the log's beginning would re-read all of it: wait.
    let mut from = loop {
        match store.head().await {
            Ok(head) => break head,
            Err(error) => {
                tracing::warn!(%error, "a feed could not find the head of the log; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    };
    let mut follower = Follower::new(&store, scope, from);
    loop {
        match follower.next(&store, None).await {
            Ok(rows) => {
                let frames = rows.iter().map(|row| Arc::new(Frame::new(row))).collect();
                let to = follower.cursor();
                // No subscriber right now is fine: the feed ends when the last one leaves.
                let _ = batches.send(Arc::new(Batch { from, to, frames }));
                from = to;
            }
            Err(error) => {
                // Subscribers notice the gap by its cursor and read the log themselves.
                tracing::warn!(%error, "a feed lost the database; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// One follower's place in a feed.
#[derive(Debug)]
pub struct Subscription {
    scope: Scope,
    cursor: Position,
    catching_up: bool,
    batches: broadcast::Receiver<Arc<Batch>>,
    /// Keeps the feed, and so the sender of `batches`, alive.
    _feed: Arc<Feed>,
}

impl Subscription {
    /// The next events after the cursor, oldest first; waits for some to come.
    pub async fn next(&mut self, store: &Store) -> Result<Vec<Arc<Frame>>, StoreError> {
        loop {
            if self.catching_up {
                let rows = store.events_after(self.scope, self.cursor, follow::BATCH).await?;
                if let Some(last) = rows.last() {
                    self.cursor = last.position();
                    return Ok(rows.iter().map(|row| Arc::new(Frame::new(row))).collect());
                }
                self.catching_up = false;
            }
            match self.batches.recv().await {
                Ok(batch) if batch.to <= self.cursor => {}
                Ok(batch) if batch.from <= self.cursor => {
                    let after = std::mem::replace(&mut self.cursor, batch.to);
                    let fresh = batch.frames.iter().filter(|frame| frame.position > after);
                    return Ok(fresh.cloned().collect());
                }
                // Events between our cursor and this batch went by unseen: read them.
                Ok(_) | Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => unreachable!("a subscription holds its feed's sender"),
            }
        }
    }
}
