//! Rooms. A room is created together with its owner's membership when an agent creates it.

use chrono::{DateTime, Utc};
use kapable_sdk::comms::types::{Participant, Room};
use sqlx::types::Json;
use uuid::Uuid;

use super::events::append_events;
use super::members::{INSERT_MEMBER, NewMember};
use super::{NewEvent, Store, StoreError, now, on_pool};

/// A room as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoomRow {
    /// The room's id.
    pub id: Uuid,
    /// Its org.
    pub org_id: Uuid,
    name: String,
    description: Option<String>,
    metadata: Json<serde_json::Value>,
    created_at: DateTime<Utc>,
}

impl From<RoomRow> for Room {
    fn from(row: RoomRow) -> Self {
        Room {
            id: row.id,
            org_id: row.org_id,
            name: row.name,
            description: row.description,
            metadata: row.metadata.0,
            created_at: row.created_at,
        }
    }
}

/// A room about to be created.
#[derive(Debug)]
pub struct NewRoom<'a> {
    /// Its org.
    pub org_id: Uuid,
    /// Its name.
    pub name: &'a str,
    /// What it is for.
    pub description: Option<&'a str>,
    /// Its metadata object.
    pub metadata: serde_json::Value,
}

/// The columns of [`RoomRow`], for `concat!` into static statements.
macro_rules! columns {
    () => {
        "r.id, r.org_id, r.name, r.description, r.metadata, r.created_at"
    };
}

impl Store {
    /// Creates a room and, when an agent creates it, that agent's owner membership, in one
    /// transaction.
    pub async fn create_room(
        &self,
        room: NewRoom<'_>,
        owner: Option<NewMember>,
    ) -> Result<RoomRow, StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        let insert = "INSERT INTO rooms (id, org_id, name, description, metadata, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6)";
        let mut events = Vec::new();
        on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            sqlx::query(insert)
                .bind(id)
                .bind(room.org_id)
                .bind(room.name)
                .bind(room.description)
                .bind(Json(&room.metadata))
                .bind(at)
                .execute(&mut *tx)
                .await?;
            if let Some(owner) = &owner {
                owner.bind_insert(sqlx::query(INSERT_MEMBER), id).execute(&mut *tx).await?;
                let joined = Participant::from(owner.clone().into_row());
                events.push(NewEvent::room(room.org_id, id, "member_joined", &joined));
            }
            append_events!(self, tx, &events);
            tx.commit().await?;
        });
        self.announce(&events);
        Ok(RoomRow {
            id,
            org_id: room.org_id,
            name: room.name.to_owned(),
            description: room.description.map(str::to_owned),
            metadata: Json(room.metadata),
            created_at: at,
        })
    }

    /// The org's room with this id.
    pub async fn get_room(
        &self,
        org_id: Uuid,
        room_id: Uuid,
    ) -> Result<Option<RoomRow>, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM rooms r WHERE r.org_id = $1 AND r.id = $2");
        // A room's row never changes once created, so a remembered one is never stale.
        if let Some(found) = self.recall.room(org_id, room_id) {
            return Ok(Some(found));
        }
        let found: Option<RoomRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(room_id)
            .fetch_optional(pool)
            .await)?;
        if let Some(found) = &found {
            self.recall.keep_room(found);
        }
        Ok(found)
    }

    /// One page of the org's rooms after `after`, oldest first; only those where `agent` is a
    /// live member when an agent is given.
    pub async fn list_rooms(
        &self,
        org_id: Uuid,
        agent: Option<Uuid>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<RoomRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM rooms r WHERE r.org_id = $1 AND ($2 IS NULL OR r.id > $2) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id \
             AND m.agent_id = $3 AND m.revoked_at IS NULL)) ORDER BY r.id LIMIT $4"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(after)
            .bind(agent)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }
}
