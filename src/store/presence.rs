//! Presence: each member agent's last heartbeat in a room. Whether it is online is computed on
//! read from the TTL; a sweep marks rows whose heartbeat has grown older than the TTL, so that
//! going offline can be announced once.

use chrono::{DateTime, Utc};
use kapable_sdk::comms::types::PresenceEntry;
use uuid::Uuid;

use super::events::append_events;
use super::{NewEvent, Store, StoreError, now, on_pool};

/// A presence row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PresenceRow {
    agent_id: Uuid,
    status: String,
    note: Option<String>,
    last_seen: DateTime<Utc>,
}

/// A presence the sweep just marked offline.
#[derive(Debug, sqlx::FromRow)]
struct GoneOffline {
    room_id: Uuid,
    org_id: Uuid,
    #[sqlx(flatten)]
    row: PresenceRow,
}

impl PresenceRow {
    /// The wire form: online when the last heartbeat is newer than `online_since`.
    pub fn into_entry(self, online_since: DateTime<Utc>) -> PresenceEntry {
        let online = self.last_seen > online_since;
        self.into_entry_with(online)
    }

    fn into_entry_with(self, online: bool) -> PresenceEntry {
        PresenceEntry {
            agent_id: self.agent_id,
            online,
            status: self.status,
            note: self.note,
            last_seen: self.last_seen,
        }
    }
}

impl Store {
    /// Records a heartbeat of the agent in the room. A heartbeat that changes the status or
    /// the note, or brings the agent back online, is announced in the room (`presence`).
    pub async fn heartbeat(
        &self,
        org_id: Uuid,
        room_id: Uuid,
        agent_id: Uuid,
        status: &str,
        note: Option<&str>,
    ) -> Result<PresenceRow, StoreError> {
        let previous = "SELECT status, note, offline_at IS NOT NULL FROM room_presence \
                        WHERE room_id = $1 AND agent_id = $2";
        let upsert = "INSERT INTO room_presence (room_id, agent_id, org_id, status, note, \
                      last_seen) VALUES ($1, $2, $3, $4, $5, $6) \
                      ON CONFLICT (room_id, agent_id) DO UPDATE SET \
                      status = excluded.status, note = excluded.note, \
                      last_seen = excluded.last_seen, offline_at = NULL \
                      RETURNING agent_id, status, note, last_seen";
        let mut events = Vec::new();
        let row = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            let before: Option<(String, Option<String>, bool)> = sqlx::query_as(previous)
                .bind(room_id)
                .bind(agent_id)
                .fetch_optional(&mut *tx)
                .await?;
            let row: PresenceRow = sqlx::query_as(upsert)
                .bind(room_id)
                .bind(agent_id)
                .bind(org_id)
                .bind(status)
                .bind(note)
                .bind(now())
                .fetch_one(&mut *tx)
                .await?;
            let changed = match &before {
                Some((status, note, offline)) => {
                    *offline || *status != row.status || *note != row.note
                }
                None => true,
            };
            if changed {
                let entry = row.clone().into_entry_with(true);
                events.push(NewEvent::room(org_id, room_id, "presence", &entry));
            }
            append_events!(self, tx, &events);
            tx.commit().await?;
            row
        });
        self.announce(&events);
        Ok(row)
    }

    /// The presence of the room's current member agents.
    pub async fn presence(&self, room_id: Uuid) -> Result<Vec<PresenceRow>, StoreError> {
        let sql = "SELECT p.agent_id, p.status, p.note, p.last_seen FROM room_presence p \
                   WHERE p.room_id = $1 AND EXISTS (SELECT 1 FROM room_members m \
                   WHERE m.room_id = p.room_id AND m.agent_id = p.agent_id \
                   AND m.revoked_at IS NULL) \
                   ORDER BY p.agent_id";
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(room_id).fetch_all(pool).await)?)
    }

    /// Marks every presence whose last heartbeat is older than `online_since` as gone offline,
    /// once, and announces each in its room (`presence` with `online` false).
    pub async fn sweep_offline(&self, online_since: DateTime<Utc>) -> Result<usize, StoreError> {
        let sql = "UPDATE room_presence SET offline_at = $2 \
                   WHERE offline_at IS NULL AND last_seen <= $1 \
                   RETURNING room_id, org_id, agent_id, status, note, last_seen";
        let mut events = Vec::new();
        on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            let gone: Vec<GoneOffline> =
                sqlx::query_as(sql).bind(online_since).bind(now()).fetch_all(&mut *tx).await?;
            for gone in gone {
                let entry = gone.row.into_entry_with(false);
                events.push(NewEvent::room(gone.org_id, gone.room_id, "presence", &entry));
            }
            append_events!(self, tx, &events);
            tx.commit().await?;
        });
        self.announce(&events);
        Ok(events.len())
    }
}
