//! Stream tickets: single-use, short-lived stand-ins for a bearer token, for browsers whose
//! `EventSource` cannot send headers. Stored hashed, like every secret.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError, now, on_pool};

/// Whom a ticket stands for.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRow {
    /// The org.
    pub org_id: Uuid,
    /// `org`, `agent` or `participant`.
    pub kind: String,
    /// The app token, the agent or the participant.
    pub subject_id: Uuid,
    /// The credential the ticket was made with (app token, agent key or participant).
    pub credential: Uuid,
    /// The room of a participant.
    pub room_id: Option<Uuid>,
}

impl Store {
    /// Stores a ticket that stands for `who` until `expires_at`.
    pub async fn create_ticket(
        &self,
        hash: &[u8; 32],
        who: &TicketRow,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO stream_tickets (ticket_hash, org_id, kind, subject_id, credential, \
                   room_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&hash[..])
            .bind(who.org_id)
            .bind(&who.kind)
            .bind(who.subject_id)
            .bind(who.credential)
            .bind(who.room_id)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Uses up the live ticket with this hash; `None` if it is unknown, used or expired.
    pub async fn redeem_ticket(&self, hash: &[u8; 32]) -> Result<Option<TicketRow>, StoreError> {
        let sql = "UPDATE stream_tickets SET used_at = $2 \
                   WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                   RETURNING org_id, kind, subject_id, credential, room_id";
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(&hash[..])
            .bind(now())
            .fetch_optional(pool)
            .await)?)
    }

    /// Deletes tickets that expired before `before`.
    pub async fn prune_tickets(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "DELETE FROM stream_tickets WHERE expires_at < $1";
        Ok(on_pool!(self, |pool| sqlx::query(sql)
            .bind(before)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?)
    }
}
