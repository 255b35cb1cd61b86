//! The event log. A state change and its event rows commit in one transaction; only then is
//! the change announced on the bus (see [`super::bus`]).
//!
//! Positions are commit-ordered. SQLite has one writer, so its row ids are. Postgres ids come
//! from a sequence, so a position there is (writing transaction id, row id), and readers see only
//! rows whose transaction is older than every transaction still in flight.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use super::bus::Wake;
use super::{Db, Store, StoreError, on_pool};

/// A position in the event log; every later commit has a greater one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// The writing transaction, on Postgres; 0 on SQLite.
    pub xid: i64,
    /// The row id.
    pub id: i64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.xid == 0 { write!(f, "{}", self.id) } else { write!(f, "{}-{}", self.xid, self.id) }
    }
}

impl FromStr for Position {
    type Err = ();

    /// Only the text a position displays as: no sign, no leading zero, so one text names one
    /// position.
    fn from_str(text: &str) -> Result<Self, ()> {
        let number = |t: &str| t.parse::<i64>().ok().filter(|n| *n >= 0).ok_or(());
        let position = match text.split_once('-') {
            Some((xid, id)) => Position { xid: number(xid)?, id: number(id)? },
            None => Position { xid: 0, id: number(text)? },
        };
        if position.to_string() == text { Ok(position) } else { Err(()) }
    }
}

/// What a subscriber follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One room's events.
    Room(Uuid),
    /// An agent's events: those of every room it is a member of, and its own.
    Agent {
        /// The agent's org.
        org_id: Uuid,
        /// The agent.
        agent_id: Uuid,
    },
    /// An org's anomaly events.
    Anomalies(Uuid),
}

/// An event about to be appended to the log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The org it belongs to.
    pub org_id: Uuid,
    /// The room, for room events.
    pub room_id: Option<Uuid>,
    /// The agent, for agent events.
    pub agent_id: Option<Uuid>,
    /// The SSE event name, such as `message` or `member_joined`.
    pub kind: &'static str,
    /// The object the REST read of the same thing returns.
    pub data: serde_json::Value,
}

impl NewEvent {
    /// A room event carrying `data`.
    pub fn room(org_id: Uuid, room_id: Uuid, kind: &'static str, data: &impl Serialize) -> Self {
        let data = serde_json::to_value(data).expect("wire types serialize");
        NewEvent { org_id, room_id: Some(room_id), agent_id: None, kind, data }
    }

    /// An event for one agent carrying `data`.
    pub fn agent(org_id: Uuid, agent_id: Uuid, kind: &'static str, data: &impl Serialize) -> Self {
        let data = serde_json::to_value(data).expect("wire types serialize");
        NewEvent { org_id, room_id: None, agent_id: Some(agent_id), kind, data }
    }

    /// An event of the whole org (an anomaly) carrying `data`.
    pub fn org(org_id: Uuid, kind: &'static str, data: &impl Serialize) -> Self {
        let data = serde_json::to_value(data).expect("wire types serialize");
        NewEvent { org_id, room_id: None, agent_id: None, kind, data }
    }

    /// The wake that announces this event once committed.
    pub fn wake(&self) -> Wake {
        Wake::Scope { org_id: self.org_id, room_id: self.room_id, agent_id: self.agent_id }
    }
}

/// The distinct wakes that announce `events`, in one order.
pub(crate) fn wakes_of(events: &[NewEvent]) -> Vec<Wake> {
    let mut wakes: Vec<Wake> = events.iter().map(NewEvent::wake).collect();
    wakes.sort_unstable();
    wakes.dedup();
    wakes
}

/// Appends `events` to the open transaction `tx` of `store`, with one `NOTIFY` per distinct wake
/// on Postgres (delivered to every instance when the transaction commits). Used inside
/// [`on_pool!`], so the same code runs on either backend's transaction.
macro_rules! append_events {
    ($store:expr, $tx:expr, $events:expr) => {{
        let events: &[$crate::store::NewEvent] = $events;
        if !events.is_empty() {
            let mut insert = sqlx::QueryBuilder::new($crate::store::events::INSERT_EVENTS);
            insert.push_values(events, |mut values, event| {
                values
                    .push_bind(event.org_id)
                    .push_bind(event.room_id)
                    .push_bind(event.agent_id)
                    .push_bind(event.kind)
                    .push_bind(sqlx::types::Json(&event.data))
                    .push_bind($crate::store::now());
            });
            insert.build().execute(&mut *$tx).await?;
        }
        if $store.is_postgres() {
            for wake in $crate::store::events::wakes_of(events) {
                sqlx::query($crate::store::events::NOTIFY)
                    .bind($crate::store::bus::CHANNEL)
                    .bind(wake.payload())
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}
pub(crate) use append_events;

/// The head of an insert of events, for a `VALUES` list to follow.
pub(super) const INSERT_EVENTS: &str =
    "INSERT INTO events (org_id, room_id, agent_id, kind, data, created_at) ";

/// Sends the Postgres notification of a transaction; delivered when it commits.
pub(super) const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// An event read back from the log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    xid: i64,
    id: i64,
    /// The SSE event name.
    pub kind: String,
    /// The room, for room events.
    pub room_id: Option<Uuid>,
    /// The agent, for agent events.
    pub agent_id: Option<Uuid>,
    data: Json<serde_json::Value>,
}

impl EventRow {
    /// Where the event stands in the log: its cursor.
    pub fn position(&self) -> Position {
        Position { xid: self.xid, id: self.id }
    }

    /// The event's object.
    pub fn data(&self) -> &serde_json::Value {
        &self.data.0
    }
}

const SQLITE_COLUMNS: &str = "0 AS xid, id, kind, room_id, agent_id, data";
const PG_COLUMNS: &str = "(xid::text)::bigint AS xid, id, kind, room_id, agent_id, data";
/// Postgres rows whose writing transaction has ended, after the cursor `($2, $3)`.
const PG_VISIBLE: &str = "xid < pg_snapshot_xmin(pg_current_snapshot()) \
    AND ((xid::text)::bigint, id) > ($2, $3)";

impl Store {
    /// Up to `limit` events of `scope` after `after`, oldest first.
    pub async fn events_after(
        &self,
        scope: Scope,
        after: Position,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let (filter, key) = scope_filter(scope);
        let rows = match &self.db {
            Db::Sqlite(pool) => {
                let sql = format!(
                    "SELECT {SQLITE_COLUMNS} FROM events WHERE {filter} AND id > $3 \
                     ORDER BY id LIMIT $4"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .bind(after.xid)
                    .bind(after.id)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                let sql = format!(
                    "SELECT {PG_COLUMNS} FROM events WHERE {filter} AND {PG_VISIBLE} \
                     ORDER BY (xid::text)::bigint, id LIMIT $4"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .bind(after.xid)
                    .bind(after.id)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// The position of the newest event a reader may see now, in any scope: following from
    /// here delivers exactly what commits later.
    pub async fn head(&self) -> Result<Position, StoreError> {
        let (xid, id): (i64, i64) = match &self.db {
            Db::Sqlite(pool) => {
                let sql = "SELECT 0, COALESCE(MAX(id), 0) FROM events";
                sqlx::query_as(sql).fetch_one(pool).await?
            }
            Db::Postgres(pool) => {
                let sql = "SELECT COALESCE(MAX((xid::text)::bigint), 0), COALESCE(MAX(id), 0) \
                           FROM events WHERE xid < pg_snapshot_xmin(pg_current_snapshot())";
                sqlx::query_as(sql).fetch_one(pool).await?
            }
        };
        Ok(Position { xid, id })
    }

    /// The position below which events were pruned: a cursor under it has lost events.
    pub async fn event_floor(&self) -> Result<Position, StoreError> {
        let sql = "SELECT xid, id FROM event_floor";
        let (xid, id): (i64, i64) =
            on_pool!(self, |pool| sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(Position { xid, id })
    }

    /// Deletes events created before `before` and raises the floor past them.
    pub async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let (columns, visible) = match self.db {
            Db::Sqlite(_) => ("0, COALESCE(MAX(id), 0)", "1 = 1"),
            Db::Postgres(_) => (
                "COALESCE(MAX((xid::text)::bigint), 0), COALESCE(MAX(id), 0)",
                "xid < pg_snapshot_xmin(pg_current_snapshot())",
            ),
        };
        let newest_gone =
            format!("SELECT {columns} FROM events WHERE created_at < $1 AND {visible}");
        let delete = format!("DELETE FROM events WHERE created_at < $1 AND {visible}");
        let raise = "UPDATE event_floor SET xid = $1, id = $2 WHERE xid < $1 OR id < $2";
        let turn = self.write_turn().await?;
        let deleted = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(turn.begin).await?;
            let (xid, id): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(newest_gone.clone()))
                .bind(before)
                .fetch_one(&mut *tx)
                .await?;
            let done = sqlx::query(sqlx::AssertSqlSafe(delete.clone()))
                .bind(before)
                .execute(&mut *tx)
                .await?;
            sqlx::query(raise).bind(xid).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(deleted)
    }
}

/// The `WHERE` clause of a scope, with `$1` bound to the returned id.
fn scope_filter(scope: Scope) -> (String, Uuid) {
    match scope {
        Scope::Room(room_id) => ("room_id = $1".to_owned(), room_id),
        Scope::Agent { agent_id, .. } => (
            "(agent_id = $1 OR room_id IN (SELECT room_id FROM room_members \
             WHERE agent_id = $1 AND revoked_at IS NULL))"
                .to_owned(),
            agent_id,
        ),
        Scope::Anomalies(org_id) => ("org_id = $1 AND kind = 'anomaly'".to_owned(), org_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_round_trips_through_its_text() {
        for position in [Position { xid: 0, id: 42 }, Position { xid: 9001, id: 7 }] {
            assert_eq!(position.to_string().parse::<Position>(), Ok(position));
        }
        assert!("x".parse::<Position>().is_err());
        assert!("-1".parse::<Position>().is_err());
    }

    #[test]
    fn only_the_text_a_position_displays_as_parses() {
        for text in ["+5", "007", "0-5", "9001-07", "9001-+7", " 5", "5 "] {
            assert_eq!(text.parse::<Position>(), Err(()), "{text:?}");
        }
        assert_eq!("0".parse::<Position>(), Ok(Position { xid: 0, id: 0 }));
    }

    #[test]
    fn positions_order_by_transaction_then_row() {
        assert!(Position { xid: 2, id: 1 } > Position { xid: 1, id: 99 });
        assert!(Position { xid: 0, id: 2 } > Position { xid: 0, id: 1 });
    }
}
