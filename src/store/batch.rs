//! Group commit for room messages: concurrent posts share one transaction and one sync.
//!
//! A post without an idempotency key is handed to a writer task (a lane) instead of opening
//! its own transaction. The lane takes every post waiting when it is free, writes them all in
//! one transaction (one `UPDATE` of each room's counter, one multi-row `INSERT` of messages and
//! one of events) and answers each post only after the commit: acknowledged still means
//! committed, but a sync now serves a whole batch. Under light load a batch is one post and
//! costs what a single transaction did; under heavy load batches grow by themselves, since
//! posts pile up while the previous commit syncs.
//!
//! Each room belongs to one lane (by its id), so a room's posts commit in the order they were
//! taken and two lanes of one instance never wait for the same room row. Rooms are locked in
//! id order within a batch, so lanes of several instances on one Postgres cannot deadlock.
//! SQLite has one writer whatever we do, so it gets one lane; Postgres gets a few, which
//! commit in parallel. If a batch fails, each of its posts is retried in a transaction of its
//! own, so one bad post gets its own error and never fails the others; but not when the
//! database is unreachable: a commit whose answer was lost may have landed, and retrying would
//! store its posts twice, so every post of the batch answers `unavailable` instead.

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::messages::{MessageRow, NewMessage};
use super::{Store, StoreError};

/// The most posts written in one transaction.
const MAX_BATCH: usize = 256;
/// Posts waiting per lane before new ones wait to be queued.
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<MessageRow, StoreError>>;

/// A post waiting for its batch.
struct Job {
    message: NewMessage,
    reply: Reply,
}

/// The lanes that group posts into batches.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    lanes: Vec<mpsc::Sender<Job>>,
}

impl Batcher {
    /// Starts `lanes` writer tasks on `store`, which must not batch itself.
    pub(super) fn start(store: &Store, lanes: usize) -> Self {
        let lanes = (0..lanes.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(QUEUE);
                tokio::spawn(run_lane(store.clone(), receiver));
                sender
            })
            .collect();
        Self { lanes }
    }

    /// Posts `message` in the next batch of its room's lane; returns once it is committed.
    pub(super) async fn post(&self, message: NewMessage) -> Result<MessageRow, StoreError> {
        let lane = &self.lanes[lane_of(message.room_id, self.lanes.len())];
        let (reply, answer) = oneshot::channel();
        lane.send(Job { message, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn lane_of(room_id: Uuid, lanes: usize) -> usize {
    (room_id.as_u128() % lanes as u128) as usize
}

/// The error of a post whose lane is gone: the runtime is shutting down.
fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}

/// The error each post of a batch that met no database is answered with.
fn unavailable(cause: &std::sync::Arc<sqlx::Error>) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(std::sync::Arc::clone(cause))))
}

/// Writes batches from `jobs` until every sender is gone.
async fn run_lane(store: Store, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write(&store, std::mem::take(&mut batch)).await;
    }
}

/// Writes one batch and answers its posts.
async fn write(store: &Store, mut jobs: Vec<Job>) {
    // Rooms in id order, each room's posts in the order they came (the sort is stable).
    jobs.sort_by_key(|job| job.message.room_id);
    let messages: Vec<&NewMessage> = jobs.iter().map(|job| &job.message).collect();
    match store.insert_messages(&messages).await {
        Ok(rows) => {
            store.count_batch(rows.len());
            for (job, row) in jobs.into_iter().zip(rows) {
                // A post whose client went away is committed all the same.
                let _ = job.reply.send(Ok(row));
            }
        }
        // The database is unreachable: a retry would fail the same way, and worse, a commit
        // whose answer was lost may have landed, so a retry could store the posts twice.
        Err(StoreError::Unavailable(cause)) => {
            tracing::debug!(error = %cause, posts = jobs.len(), "a batch met no database");
            let cause = std::sync::Arc::new(cause);
            for job in jobs {
                let _ = job.reply.send(Err(unavailable(&cause)));
            }
        }
        Err(error) if jobs.len() > 1 => {
            tracing::debug!(%error, posts = jobs.len(), "a batch failed; posting one by one");
            for job in jobs {
                let posted = store.insert_messages(&[&job.message]).await;
                let _ = job.reply.send(posted.map(|mut rows| rows.remove(0)));
            }
        }
        Err(error) => {
            let job = jobs.remove(0);
            let _ = job.reply.send(Err(error));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_always_lands_in_the_same_lane() {
        let room = Uuid::now_v7();
        let lane = lane_of(room, 4);
        assert!(lane < 4);
        assert!((0..10).all(|_| lane_of(room, 4) == lane));
        assert_eq!(lane_of(room, 1), 0);
    }
}
