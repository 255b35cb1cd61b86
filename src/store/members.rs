//! Room members: agents of the org and guests, each with a role. A revoked membership keeps its
//! row (messages point at it) but no longer grants anything.

use chrono::{DateTime, Utc};
use kapable_sdk::comms::types::{JoinRoomResponse, Participant, Room};
use sqlx::query::Query;
use uuid::Uuid;

use super::events::append_events;
use super::recall::MemberKey;
use super::{NewEvent, Store, StoreError, now, on_pool};

/// A membership as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    /// The membership's id: the participant id.
    pub id: Uuid,
    /// `agent` or `guest`.
    pub kind: String,
    /// The agent, for agent members.
    pub agent_id: Option<Uuid>,
    /// The name shown with its messages.
    pub display_name: String,
    /// Its role.
    pub role: String,
    joined_at: DateTime<Utc>,
}

impl From<MemberRow> for Participant {
    fn from(row: MemberRow) -> Self {
        Participant {
            id: row.id,
            kind: row.kind,
            agent_id: row.agent_id,
            display_name: row.display_name,
            role: row.role,
            joined_at: row.joined_at,
        }
    }
}

/// A membership about to be created.
#[derive(Debug, Clone)]
pub struct NewMember {
    /// The new participant id.
    pub id: Uuid,
    /// The room's org.
    pub org_id: Uuid,
    /// `agent` or `guest`.
    pub kind: &'static str,
    /// The agent, for agent members.
    pub agent_id: Option<Uuid>,
    /// The name shown with its messages.
    pub display_name: String,
    /// Its role.
    pub role: String,
    /// The hash of a guest's participant token.
    pub token_hash: Option<[u8; 32]>,
    /// When it joins.
    pub joined_at: DateTime<Utc>,
}

pub(super) const INSERT_MEMBER: &str = "INSERT INTO room_members (id, org_id, room_id, kind, \
    agent_id, display_name, role, token_hash, joined_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The columns of [`MemberRow`], for `concat!` into static statements.
macro_rules! columns {
    () => {
        "id, kind, agent_id, display_name, role, joined_at"
    };
}

/// Selects an agent's live membership of a room: `$1` the room, `$2` the agent.
pub(super) const SELECT_AGENT_MEMBER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM room_members WHERE room_id = $1 AND agent_id = $2 AND revoked_at IS NULL"
);

impl NewMember {
    /// An agent of the org joining with `role`.
    pub fn agent(org_id: Uuid, agent_id: Uuid, name: &str, role: &str) -> Self {
        NewMember {
            id: Uuid::now_v7(),
            org_id,
            kind: "agent",
            agent_id: Some(agent_id),
            display_name: name.to_owned(),
            role: role.to_owned(),
            token_hash: None,
            joined_at: now(),
        }
    }

    /// A guest joining with `role`, holding the participant token of this hash.
    pub fn guest(org_id: Uuid, name: &str, role: &str, token_hash: [u8; 32]) -> Self {
        NewMember {
            kind: "guest",
            agent_id: None,
            token_hash: Some(token_hash),
            ..NewMember::agent(org_id, Uuid::nil(), name, role)
        }
    }

    /// Binds this member to [`INSERT_MEMBER`] for `room_id`.
    pub(super) fn bind_insert<'q, DB>(
        &'q self,
        query: Query<'q, DB, <DB as sqlx::Database>::Arguments>,
        room_id: Uuid,
    ) -> Query<'q, DB, <DB as sqlx::Database>::Arguments>
    where
        DB: sqlx::Database,
        Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<Uuid>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        query
            .bind(self.id)
            .bind(self.org_id)
            .bind(room_id)
            .bind(self.kind)
            .bind(self.agent_id)
            .bind(self.display_name.as_str())
            .bind(self.role.as_str())
            .bind(self.token_hash.as_ref().map(|h| &h[..]))
            .bind(self.joined_at)
    }

    /// The row this member becomes once stored.
    pub(super) fn into_row(self) -> MemberRow {
        MemberRow {
            id: self.id,
            kind: self.kind.to_owned(),
            agent_id: self.agent_id,
            display_name: self.display_name,
            role: self.role,
            joined_at: self.joined_at,
        }
    }
}

impl Store {
    /// The agent's live membership of the room.
    pub async fn agent_member(
        &self,
        room_id: Uuid,
        agent_id: Uuid,
    ) -> Result<Option<MemberRow>, StoreError> {
        let read = async {
            Ok(on_pool!(self, |pool| sqlx::query_as(SELECT_AGENT_MEMBER)
                .bind(room_id)
                .bind(agent_id)
                .fetch_optional(pool)
                .await)?)
        };
        self.recall.member(MemberKey::Agent { room_id, agent_id }, read).await
    }

    /// A live membership of the room by its participant id.
    pub async fn member(
        &self,
        room_id: Uuid,
        member_id: Uuid,
    ) -> Result<Option<MemberRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM room_members WHERE room_id = $1 AND id = $2 AND revoked_at IS NULL"
        );
        let read = async {
            Ok(on_pool!(self, |pool| sqlx::query_as(sql)
                .bind(room_id)
                .bind(member_id)
                .fetch_optional(pool)
                .await)?)
        };
        self.recall.member(MemberKey::Id { room_id, member_id }, read).await
    }

    /// The room's live members, in the order they joined.
    pub async fn members(&self, room_id: Uuid) -> Result<Vec<MemberRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM room_members WHERE room_id = $1 AND revoked_at IS NULL ORDER BY id"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(room_id).fetch_all(pool).await)?)
    }

    /// Makes the agent a member of `room` with `role`, or gives an existing member that role.
    /// A new member is announced in the room (`member_joined`) and to the agent itself
    /// (`invitation`). Returns the membership and whether it is new.
    pub async fn add_agent_member(
        &self,
        room: &Room,
        member: NewMember,
    ) -> Result<(MemberRow, bool), StoreError> {
        let agent_id = member.agent_id.expect("an agent member names its agent");
        let update = "UPDATE room_members SET role = $3 \
                      WHERE room_id = $1 AND agent_id = $2 AND revoked_at IS NULL";
        let mut events = Vec::new();
        let added = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            let updated = sqlx::query(update)
                .bind(room.id)
                .bind(agent_id)
                .bind(&member.role)
                .execute(&mut *tx)
                .await?;
            let (row, created) = if updated.rows_affected() == 0 {
                member.bind_insert(sqlx::query(INSERT_MEMBER), room.id).execute(&mut *tx).await?;
                (member.clone().into_row(), true)
            } else {
                let row: MemberRow = sqlx::query_as(SELECT_AGENT_MEMBER)
                    .bind(room.id)
                    .bind(agent_id)
                    .fetch_one(&mut *tx)
                    .await?;
                (row, false)
            };
            let participant = Participant::from(row.clone());
            let kind = if created { "member_joined" } else { "member_updated" };
            events.push(NewEvent::room(room.org_id, room.id, kind, &participant));
            if created {
                let invitation =
                    JoinRoomResponse { room: room.clone(), participant, participant_token: None };
                events.push(NewEvent::agent(room.org_id, agent_id, "invitation", &invitation));
            }
            append_events!(self, tx, &events);
            tx.commit().await?;
            (row, created)
        });
        if !added.1 {
            self.access_changed();
        }
        self.announce(&events);
        Ok(added)
    }

    /// Ends the agent's membership; the ended membership, or `None` if it had none.
    pub async fn revoke_agent_member(
        &self,
        org_id: Uuid,
        room_id: Uuid,
        agent_id: Uuid,
    ) -> Result<Option<MemberRow>, StoreError> {
        let sql = concat!(
            "UPDATE room_members SET revoked_at = $3 \
             WHERE room_id = $1 AND agent_id = $2 AND revoked_at IS NULL RETURNING ",
            columns!()
        );
        let mut events = Vec::new();
        let revoked = on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            let row: Option<MemberRow> = sqlx::query_as(sql)
                .bind(room_id)
                .bind(agent_id)
                .bind(now())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = &row {
                let left = Participant::from(row.clone());
                events.push(NewEvent::room(org_id, room_id, "member_left", &left));
            }
            append_events!(self, tx, &events);
            tx.commit().await?;
            row
        });
        self.access_changed();
        self.announce(&events);
        Ok(revoked)
    }
}
