//! Room invites: bearer tokens (stored hashed) that let their holder join a room, until they
//! expire, are revoked or are used up.
//!
//! A join is one transaction: find the invite, count the use (a conditional update, so that
//! `max_uses` holds under concurrent joins), create the membership.

use chrono::{DateTime, Utc};
use kapable_sdk::comms::types::{Invite, Participant};
use uuid::Uuid;

use super::events::append_events;
use super::members::{INSERT_MEMBER, MemberRow, NewMember, SELECT_AGENT_MEMBER};
use super::{NewEvent, Store, StoreError, now, on_pool};

/// An invite as stored, without its token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InviteRow {
    id: Uuid,
    room_id: Uuid,
    role: String,
    prefix: String,
    max_uses: Option<i64>,
    uses: i64,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl From<InviteRow> for Invite {
    fn from(row: InviteRow) -> Self {
        Invite {
            id: row.id,
            room_id: row.room_id,
            role: row.role,
            prefix: row.prefix,
            max_uses: row.max_uses,
            uses: row.uses,
            expires_at: row.expires_at,
            created_at: row.created_at,
        }
    }
}

/// An invite about to be created.
#[derive(Debug)]
pub struct NewInvite {
    /// The room's org.
    pub org_id: Uuid,
    /// The room.
    pub room_id: Uuid,
    /// The role it grants.
    pub role: String,
    /// The start of the token, safe to show.
    pub prefix: String,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// How many joins it allows; `None` for unlimited.
    pub max_uses: Option<i64>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Who is joining with an invite: an agent joins as itself when the room is of its org;
/// anyone else joins as a guest holding a participant token.
#[derive(Debug)]
pub struct JoinAs {
    /// The caller's agent: its org, id and name.
    pub agent: Option<(Uuid, Uuid, String)>,
    /// The name a guest is shown under.
    pub guest_name: String,
    /// SHA-256 of the participant token a guest receives.
    pub guest_token_hash: [u8; 32],
}

/// What a join did.
#[derive(Debug)]
pub enum Joined {
    /// No invite has this token.
    Unknown,
    /// The invite is expired, revoked or used up.
    Expired,
    /// The agent was a member already; nothing changed.
    Already {
        /// The room's org.
        org_id: Uuid,
        /// The room.
        room_id: Uuid,
        /// The existing membership.
        member: MemberRow,
    },
    /// A new membership.
    New {
        /// The room's org.
        org_id: Uuid,
        /// The room.
        room_id: Uuid,
        /// The new membership.
        member: MemberRow,
    },
}

/// The columns of [`InviteRow`], for `concat!` into static statements.
macro_rules! columns {
    () => {
        "id, room_id, role, prefix, max_uses, uses, expires_at, created_at"
    };
}

impl Store {
    /// Stores a new invite.
    pub async fn create_invite(&self, invite: &NewInvite) -> Result<InviteRow, StoreError> {
        let sql = concat!(
            "INSERT INTO room_invites (id, org_id, room_id, role, prefix, token_hash, max_uses, \
             expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
            columns!()
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(Uuid::now_v7())
            .bind(invite.org_id)
            .bind(invite.room_id)
            .bind(&invite.role)
            .bind(&invite.prefix)
            .bind(&invite.hash[..])
            .bind(invite.max_uses)
            .bind(invite.expires_at)
            .bind(now())
            .fetch_one(pool)
            .await)?)
    }

    /// One page of the room's invites that still admit someone, oldest first.
    pub async fn active_invites(
        &self,
        room_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<InviteRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM room_invites WHERE room_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             AND (max_uses IS NULL OR uses < max_uses) AND ($3 IS NULL OR id > $3) \
             ORDER BY id LIMIT $4"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(room_id)
            .bind(now())
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Revokes the room's invite; false when the room has no such invite.
    pub async fn revoke_invite(&self, room_id: Uuid, invite_id: Uuid) -> Result<bool, StoreError> {
        let sql = "UPDATE room_invites SET revoked_at = COALESCE(revoked_at, $3) \
                   WHERE room_id = $1 AND id = $2";
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(room_id)
            .bind(invite_id)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// Joins the room of the invite with this token hash, counting one use.
    pub async fn join_with_invite(
        &self,
        hash: &[u8; 32],
        who: JoinAs,
    ) -> Result<Joined, StoreError> {
        let find = "SELECT id, org_id, room_id, role FROM room_invites WHERE token_hash = $1";
        let count_use = "UPDATE room_invites SET uses = uses + 1 WHERE id = $1 \
                         AND revoked_at IS NULL AND expires_at > $2 \
                         AND (max_uses IS NULL OR uses < max_uses)";
        let at = now();
        let turn = self.write_turn().await?;
        let mut events = Vec::new();
        let joined = on_pool!(self, |pool| {
            let mut tx = pool.begin_with(turn.begin).await?;
            let invite: Option<(Uuid, Uuid, Uuid, String)> =
                sqlx::query_as(find).bind(&hash[..]).fetch_optional(&mut *tx).await?;
            let Some((invite_id, org_id, room_id, role)) = invite else {
                return Ok(Joined::Unknown);
            };
            let member = new_member(org_id, &role, who);
            if let Some(agent_id) = member.agent_id {
                let row: Option<MemberRow> = sqlx::query_as(SELECT_AGENT_MEMBER)
                    .bind(room_id)
                    .bind(agent_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(member) = row {
                    return Ok(Joined::Already { org_id, room_id, member });
                }
            }
            let counted = sqlx::query(count_use).bind(invite_id).bind(at).execute(&mut *tx).await?;
            if counted.rows_affected() == 0 {
                return Ok(Joined::Expired);
            }
            member.bind_insert(sqlx::query(INSERT_MEMBER), room_id).execute(&mut *tx).await?;
            let member = member.into_row();
            let joined = Participant::from(member.clone());
            events.push(NewEvent::room(org_id, room_id, "member_joined", &joined));
            append_events!(self, tx, &events);
            tx.commit().await?;
            Joined::New { org_id, room_id, member }
        });
        self.announce(&events);
        Ok(joined)
    }
}

/// The membership a join creates: the agent itself when the room is of its org, else a guest.
fn new_member(room_org: Uuid, role: &str, who: JoinAs) -> NewMember {
    match who.agent {
        Some((org_id, agent_id, name)) if org_id == room_org => {
            NewMember::agent(room_org, agent_id, &name, role)
        }
        _ => NewMember::guest(room_org, &who.guest_name, role, who.guest_token_hash),
    }
}
