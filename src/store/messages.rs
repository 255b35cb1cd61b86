//! Room messages and their annotations.
//!
//! A message takes the next `seq` of its room from `rooms.last_seq` in the transaction that
//! inserts it. That update locks the room's row until the commit, so a room's writers commit in
//! `seq` order: a reader paging `after` a seq never misses a message that commits later with a
//! smaller one. Idempotency keys are unique per room and sender; a key older than 24 hours is
//! released when reused.
//!
//! On Postgres an event's position starts with its transaction's id, which is handed out at
//! the transaction's first write. So that a room's events follow the order of its `seq`, a
//! posting transaction first takes an advisory lock on each of its rooms (in one order, so
//! batches cannot deadlock) and writes only once it holds them all: whoever held a room before
//! got its transaction id earlier.

use chrono::{DateTime, Duration, Utc};
use kapable_sdk::comms::types::{AnnotationSummary, RoomMessage, Sender};
use sqlx::types::Json;
use uuid::Uuid;

use std::collections::HashMap;

use super::events::append_events;
use super::{NewEvent, Store, StoreError, now, on_pool};

/// How long an idempotency key returns the first message.
const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// A message as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    /// The message's id.
    pub id: Uuid,
    room_id: Uuid,
    /// Its position in the room.
    pub seq: i64,
    sender_kind: String,
    sender_member_id: Option<Uuid>,
    sender_agent_id: Option<Uuid>,
    sender_name: String,
    body: String,
    kind: String,
    metadata: Json<serde_json::Value>,
    reply_to: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl MessageRow {
    /// The wire form, with its annotations added up.
    pub fn into_message(self, annotations: Vec<AnnotationSummary>) -> RoomMessage {
        RoomMessage {
            id: self.id,
            room_id: self.room_id,
            seq: self.seq,
            sender: Sender {
                kind: self.sender_kind,
                participant_id: self.sender_member_id,
                agent_id: self.sender_agent_id,
                display_name: self.sender_name,
            },
            body: self.body,
            kind: self.kind,
            metadata: self.metadata.0,
            reply_to: self.reply_to,
            created_at: self.created_at,
            annotations,
        }
    }
}

/// A message about to be posted.
#[derive(Debug)]
pub struct NewMessage {
    /// The room's org.
    pub org_id: Uuid,
    /// The room.
    pub room_id: Uuid,
    /// `agent`, `guest` or `org`.
    pub sender_kind: &'static str,
    /// The participant id, or the org id for an org token: the identity keys are scoped to.
    pub sender_id: Uuid,
    /// The sender's membership, if it has one.
    pub sender_member_id: Option<Uuid>,
    /// The sending agent, if any.
    pub sender_agent_id: Option<Uuid>,
    /// The name shown with the message.
    pub sender_name: String,
    /// The text.
    pub body: String,
    /// Its kind.
    pub kind: String,
    /// Its metadata object.
    pub metadata: serde_json::Value,
    /// The message it answers.
    pub reply_to: Option<Uuid>,
    /// The sender's idempotency key.
    pub idempotency_key: Option<String>,
}

/// Takes a room's posting lock on Postgres until the transaction ends.
const LOCK_ROOM: &str = "SELECT pg_advisory_xact_lock($1)";

/// The advisory lock key of a room: two rooms may share one, which costs only waiting.
fn room_lock(room_id: Uuid) -> i64 {
    room_id.as_u64_pair().1 as i64
}

impl NewMessage {
    /// The row this message becomes at `seq`.
    fn row(&self, seq: i64, at: DateTime<Utc>) -> MessageRow {
        MessageRow {
            id: Uuid::now_v7(),
            room_id: self.room_id,
            seq,
            sender_kind: self.sender_kind.to_owned(),
            sender_member_id: self.sender_member_id,
            sender_agent_id: self.sender_agent_id,
            sender_name: self.sender_name.clone(),
            body: self.body.clone(),
            kind: self.kind.clone(),
            metadata: Json(self.metadata.clone()),
            reply_to: self.reply_to,
            created_at: at,
        }
    }
}

/// One annotation of a message as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AnnotationRow {
    /// The message annotated.
    pub message_id: Uuid,
    /// `reaction` or `metadata`.
    pub kind: String,
    /// The reaction or key.
    pub key: String,
    /// The metadata value.
    pub value: Option<Json<serde_json::Value>>,
}

/// An annotation about to be added.
#[derive(Debug)]
pub struct NewAnnotation {
    /// `reaction` or `metadata`.
    pub kind: String,
    /// The reaction or key.
    pub key: String,
    /// The metadata value; `None` for a reaction.
    pub value: Option<serde_json::Value>,
}

/// The columns of [`MessageRow`], for `concat!` into static statements.
macro_rules! columns {
    () => {
        "id, room_id, seq, sender_kind, sender_member_id, sender_agent_id, sender_name, body, \
         kind, metadata, reply_to, created_at"
    };
}

const FIND_BY_KEY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM room_messages WHERE room_id = $1 AND sender_id = $2 AND idempotency_key = $3"
);

impl Store {
    /// Posts a message, or returns the one posted under the same idempotency key within 24
    /// hours. Returns the message and whether it is new.
    ///
    /// A post without a key joins the next group commit of its room (see [`super::batch`]);
    /// one with a key has its own transaction, which looks the key up first.
    pub async fn post_message(
        &self,
        message: NewMessage,
    ) -> Result<(MessageRow, bool), StoreError> {
        if message.idempotency_key.is_none() {
            let row = match &self.batcher {
                Some(batcher) => batcher.post(message).await?,
                None => self.insert_messages(&[&message]).await?.remove(0),
            };
            return Ok((row, true));
        }
        match self.try_post_message(&message).await {
            // Two posts with one key raced and the other committed first: answer with it.
            Err(StoreError::Duplicate(_)) => {
                let existing = self.message_by_key(&message).await?;
                Ok((existing.expect("the row that won the race"), false))
            }
            outcome => outcome,
        }
    }

    async fn try_post_message(&self, m: &NewMessage) -> Result<(MessageRow, bool), StoreError> {
        let next_seq = "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq";
        let release_key = "UPDATE room_messages SET idempotency_key = NULL \
                           WHERE room_id = $1 AND sender_id = $2 AND idempotency_key = $3";
        let insert = concat!(
            "INSERT INTO room_messages (id, org_id, room_id, seq, sender_kind, sender_id, \
             sender_member_id, sender_agent_id, sender_name, body, kind, metadata, reply_to, \
             idempotency_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING ",
            columns!()
        );
        let at = now();
        let turn = self.write_turn().await?;
        let mut events = Vec::new();
        let posted = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(turn.begin).await?;
            if self.is_postgres() {
                sqlx::query(LOCK_ROOM).bind(room_lock(m.room_id)).execute(&mut *tx).await?;
            }
            if let Some(key) = &m.idempotency_key {
                let found: Option<MessageRow> = sqlx::query_as(FIND_BY_KEY)
                    .bind(m.room_id)
                    .bind(m.sender_id)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                match found {
                    Some(first) if first.created_at > at - IDEMPOTENCY_WINDOW => {
                        return Ok((first, false));
                    }
                    Some(_) => {
                        sqlx::query(release_key)
                            .bind(m.room_id)
                            .bind(m.sender_id)
                            .bind(key)
                            .execute(&mut *tx)
                            .await?;
                    }
                    None => {}
                }
            }
            let (seq,): (i64,) =
                sqlx::query_as(next_seq).bind(m.room_id).fetch_one(&mut *tx).await?;
            let row: MessageRow = sqlx::query_as(insert)
                .bind(Uuid::now_v7())
                .bind(m.org_id)
                .bind(m.room_id)
                .bind(seq)
                .bind(m.sender_kind)
                .bind(m.sender_id)
                .bind(m.sender_member_id)
                .bind(m.sender_agent_id)
                .bind(&m.sender_name)
                .bind(&m.body)
                .bind(&m.kind)
                .bind(Json(&m.metadata))
                .bind(m.reply_to)
                .bind(&m.idempotency_key)
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
            let message = row.clone().into_message(Vec::new());
            events.push(NewEvent::room(m.org_id, m.room_id, "message", &message));
            append_events!(self, tx, &events);
            tx.commit().await?;
            (row, true)
        });
        self.announce(&events);
        Ok(posted)
    }

    /// Inserts `messages`, which carry no idempotency key and are sorted by room, in one
    /// transaction: each room's counter moves once for all of its messages, and the messages
    /// and their events go in with one statement each.
    pub(super) async fn insert_messages(
        &self,
        messages: &[&NewMessage],
    ) -> Result<Vec<MessageRow>, StoreError> {
        let take_seqs =
            "UPDATE rooms SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq";
        let insert = "INSERT INTO room_messages (id, org_id, room_id, seq, sender_kind, \
                      sender_id, sender_member_id, sender_agent_id, sender_name, body, kind, \
                      metadata, reply_to, idempotency_key, created_at) ";
        let at = now();
        let mut rows = Vec::with_capacity(messages.len());
        let mut events = Vec::with_capacity(messages.len());
        let turn = self.write_turn().await?;
        let mut locks: Vec<i64> = messages.iter().map(|m| room_lock(m.room_id)).collect();
        locks.sort_unstable();
        locks.dedup();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_with(turn.begin).await?;
            if self.is_postgres() {
                for lock in &locks {
                    sqlx::query(LOCK_ROOM).bind(lock).execute(&mut *tx).await?;
                }
            }
            for room in messages.chunk_by(|a, b| a.room_id == b.room_id) {
                let count = i64::try_from(room.len()).expect("a batch is small");
                let (last,): (i64,) = sqlx::query_as(take_seqs)
                    .bind(room[0].room_id)
                    .bind(count)
                    .fetch_one(&mut *tx)
                    .await?;
                let first = rows.len();
                rows.extend(room.iter().zip(last - count + 1..).map(|(m, seq)| m.row(seq, at)));
                let mut query = sqlx::QueryBuilder::new(insert);
                query.push_values(room.iter().zip(&rows[first..]), |mut values, (m, row)| {
                    values
                        .push_bind(row.id)
                        .push_bind(m.org_id)
                        .push_bind(m.room_id)
                        .push_bind(row.seq)
                        .push_bind(m.sender_kind)
                        .push_bind(m.sender_id)
                        .push_bind(m.sender_member_id)
                        .push_bind(m.sender_agent_id)
                        .push_bind(&m.sender_name)
                        .push_bind(&m.body)
                        .push_bind(&m.kind)
                        .push_bind(Json(&m.metadata))
                        .push_bind(m.reply_to)
                        .push_bind(None::<String>)
                        .push_bind(at);
                });
                query.build().execute(&mut *tx).await?;
            }
            events.extend(rows.iter().zip(messages).map(|(row, m)| {
                NewEvent::room(m.org_id, m.room_id, "message", &row.clone().into_message(vec![]))
            }));
            append_events!(self, tx, &events);
            tx.commit().await?;
        });
        self.announce(&events);
        Ok(rows)
    }

    async fn message_by_key(&self, m: &NewMessage) -> Result<Option<MessageRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(FIND_BY_KEY)
            .bind(m.room_id)
            .bind(m.sender_id)
            .bind(&m.idempotency_key)
            .fetch_optional(pool)
            .await)?)
    }

    /// The room's message with this id.
    pub async fn message(
        &self,
        room_id: Uuid,
        message_id: Uuid,
    ) -> Result<Option<MessageRow>, StoreError> {
        let sql =
            concat!("SELECT ", columns!(), " FROM room_messages WHERE room_id = $1 AND id = $2");
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(room_id)
            .bind(message_id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Up to `limit` messages with a seq below `before`, newest first.
    pub async fn messages_before(
        &self,
        room_id: Uuid,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM room_messages WHERE room_id = $1 AND ($2 IS NULL OR seq < $2) \
             ORDER BY seq DESC LIMIT $3"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(room_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Up to `limit` messages with a seq above `after`, oldest first.
    pub async fn messages_after(
        &self,
        room_id: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM room_messages WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(room_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// The annotations of the room's messages with seqs from `low` to `high`, oldest first.
    pub async fn annotations(
        &self,
        room_id: Uuid,
        low: i64,
        high: i64,
    ) -> Result<Vec<AnnotationRow>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(ANNOTATIONS_BETWEEN)
            .bind(room_id)
            .bind(low)
            .bind(high)
            .fetch_all(pool)
            .await)?)
    }

    /// Adds annotations to a message in one transaction, with the `annotation` event carrying
    /// the message and its annotations added up. A reaction given again by the same sender
    /// changes nothing; a metadata key set again takes the new value. Returns the message.
    pub async fn annotate(
        &self,
        org_id: Uuid,
        message: &MessageRow,
        sender_id: Uuid,
        annotations: &[NewAnnotation],
    ) -> Result<RoomMessage, StoreError> {
        let sql = "INSERT INTO message_annotations (id, org_id, room_id, message_id, message_seq, \
                   sender_id, kind, key, value, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                   ON CONFLICT (message_id, sender_id, kind, key) DO UPDATE SET \
                   value = excluded.value, updated_at = excluded.updated_at \
                   WHERE excluded.kind = 'metadata'";
        let at = now();
        let mut events = Vec::new();
        let annotated = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            for annotation in annotations {
                sqlx::query(sql)
                    .bind(Uuid::now_v7())
                    .bind(org_id)
                    .bind(message.room_id)
                    .bind(message.id)
                    .bind(message.seq)
                    .bind(sender_id)
                    .bind(&annotation.kind)
                    .bind(&annotation.key)
                    .bind(annotation.value.as_ref().map(Json))
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            let rows: Vec<AnnotationRow> = sqlx::query_as(ANNOTATIONS_BETWEEN)
                .bind(message.room_id)
                .bind(message.seq)
                .bind(message.seq)
                .fetch_all(&mut *tx)
                .await?;
            let mut summaries = summarize(rows);
            let summary = summaries.remove(&message.id).unwrap_or_default();
            let annotated = message.clone().into_message(summary);
            events.push(NewEvent::room(org_id, message.room_id, "annotation", &annotated));
            append_events!(self, tx, &events);
            tx.commit().await?;
            annotated
        });
        self.announce(&events);
        Ok(annotated)
    }
}

/// Selects the annotations of a room's messages with seqs from `$2` to `$3`, oldest first.
const ANNOTATIONS_BETWEEN: &str = "SELECT message_id, kind, key, value FROM message_annotations \
    WHERE room_id = $1 AND message_seq BETWEEN $2 AND $3 ORDER BY updated_at, id";

/// Adds up annotation rows per message, kind and key; the latest metadata value wins.
pub fn summarize(rows: Vec<AnnotationRow>) -> HashMap<Uuid, Vec<AnnotationSummary>> {
    let mut by_message: HashMap<Uuid, Vec<AnnotationSummary>> = HashMap::new();
    for annotation in rows {
        let summaries = by_message.entry(annotation.message_id).or_default();
        let value = annotation.value.map(|v| v.0);
        match summaries.iter_mut().find(|s| s.kind == annotation.kind && s.key == annotation.key) {
            Some(summary) => {
                summary.count += 1;
                // Rows come oldest first, so the last value seen is the latest.
                if value.is_some() {
                    summary.value = value;
                }
            }
            None => summaries.push(AnnotationSummary {
                kind: annotation.kind,
                key: annotation.key,
                count: 1,
                value,
            }),
        }
    }
    by_message
}
