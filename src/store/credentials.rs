//! Credentials: app tokens and agent keys, stored only as SHA-256 hashes.
//!
//! Authentication looks a credential up by its hash (a unique index), so the secret itself is
//! never compared byte by byte against stored text. Revocation and agent deletion are visible to
//! the very next lookup: nothing here is cached.

use chrono::{DateTime, Utc};
use kapable_sdk::comms::types::{AgentKey, AppToken};
use uuid::Uuid;

use super::{Store, StoreError, now, on_pool};

/// A credential about to be stored: its id, label, display prefix and hash.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// The credential's id.
    pub id: Uuid,
    /// What it is for.
    pub label: String,
    /// The start of the secret, safe to show.
    pub prefix: String,
    /// SHA-256 of the whole secret.
    pub hash: [u8; 32],
}

/// A live credential found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An org app token.
    App {
        /// The token's id.
        token_id: Uuid,
        /// Its org.
        org_id: Uuid,
        /// The stored hash, for a constant-time comparison.
        hash: Vec<u8>,
    },
    /// An agent key of a live agent.
    Agent {
        /// The key's id.
        key_id: Uuid,
        /// Its org.
        org_id: Uuid,
        /// The agent it acts as.
        agent_id: Uuid,
        /// The agent's name.
        agent_name: String,
        /// The stored hash, for a constant-time comparison.
        hash: Vec<u8>,
    },
    /// A mailbox channel's secret, while the channel and its mailbox are live.
    Channel {
        /// The channel's org.
        org_id: Uuid,
        /// The channel.
        channel_id: Uuid,
        /// Its mailbox.
        mailbox_id: Uuid,
        /// Whether it is an `email` channel (one that receives mail).
        email: bool,
        /// The stored hash, for a constant-time comparison.
        hash: Vec<u8>,
    },
    /// A guest's participant token, while the guest is a member of its room.
    Participant {
        /// The room's org.
        org_id: Uuid,
        /// The room.
        room_id: Uuid,
        /// The guest's membership.
        member_id: Uuid,
        /// The stored hash, for a constant-time comparison.
        hash: Vec<u8>,
    },
}

/// An agent key as stored, without its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentKeyRow {
    id: Uuid,
    agent_id: Uuid,
    label: String,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<AgentKeyRow> for AgentKey {
    fn from(row: AgentKeyRow) -> Self {
        AgentKey {
            id: row.id,
            agent_id: row.agent_id,
            label: row.label,
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// An app token as stored, without its secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppTokenRow {
    id: Uuid,
    org_id: Uuid,
    label: String,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<AppTokenRow> for AppToken {
    fn from(row: AppTokenRow) -> Self {
        AppToken {
            id: row.id,
            org_id: row.org_id,
            label: row.label,
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// The columns of [`AgentKeyRow`], for `concat!` into static statements.
macro_rules! key_columns {
    () => {
        "id, agent_id, label, prefix, created_at, last_used_at"
    };
}

/// The columns of [`AppTokenRow`], for `concat!` into static statements.
macro_rules! token_columns {
    () => {
        "id, org_id, label, prefix, created_at, last_used_at"
    };
}

impl Store {
    /// The live app token with this hash.
    pub async fn find_app_token(&self, hash: &[u8; 32]) -> Result<Option<Credential>, StoreError> {
        let is_app = |c: &Credential| matches!(c, Credential::App { .. });
        self.recall.credential(*hash, is_app, self.read_app_token(hash)).await
    }

    /// The live agent key with this hash, if its agent is live too.
    pub async fn find_agent_key(&self, hash: &[u8; 32]) -> Result<Option<Credential>, StoreError> {
        let is_agent = |c: &Credential| matches!(c, Credential::Agent { .. });
        self.recall.credential(*hash, is_agent, self.read_agent_key(hash)).await
    }

    /// The live participant token with this hash.
    pub async fn find_participant(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<Credential>, StoreError> {
        let is_participant = |c: &Credential| matches!(c, Credential::Participant { .. });
        self.recall.credential(*hash, is_participant, self.read_participant(hash)).await
    }

    async fn read_app_token(&self, hash: &[u8; 32]) -> Result<Option<Credential>, StoreError> {
        let sql = "SELECT id, org_id, token_hash FROM app_tokens \
                   WHERE token_hash = $1 AND revoked_at IS NULL";
        let row: Option<(Uuid, Uuid, Vec<u8>)> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(&hash[..]).fetch_optional(pool).await)?;
        Ok(row.map(|(token_id, org_id, hash)| Credential::App { token_id, org_id, hash }))
    }

    async fn read_agent_key(&self, hash: &[u8; 32]) -> Result<Option<Credential>, StoreError> {
        let sql = "SELECT k.id, k.org_id, k.agent_id, a.name, k.key_hash \
                   FROM agent_keys k JOIN agents a ON a.id = k.agent_id \
                   WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND a.deleted_at IS NULL";
        let row: Option<(Uuid, Uuid, Uuid, String, Vec<u8>)> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(&hash[..]).fetch_optional(pool).await)?;
        Ok(row.map(|(key_id, org_id, agent_id, agent_name, hash)| Credential::Agent {
            key_id,
            org_id,
            agent_id,
            agent_name,
            hash,
        }))
    }

    async fn read_participant(&self, hash: &[u8; 32]) -> Result<Option<Credential>, StoreError> {
        let sql = "SELECT id, org_id, room_id, token_hash FROM room_members \
                   WHERE token_hash = $1 AND revoked_at IS NULL";
        let row: Option<(Uuid, Uuid, Uuid, Vec<u8>)> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(&hash[..]).fetch_optional(pool).await)?;
        Ok(row.map(|(member_id, org_id, room_id, hash)| Credential::Participant {
            org_id,
            room_id,
            member_id,
            hash,
        }))
    }

    /// Records that a credential was used at `at`. Callers throttle this (once a minute).
    pub async fn touch_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        let (sql, id) = match credential {
            Credential::App { token_id, .. } => {
                ("UPDATE app_tokens SET last_used_at = $2 WHERE id = $1", token_id)
            }
            Credential::Agent { key_id, .. } => {
                ("UPDATE agent_keys SET last_used_at = $2 WHERE id = $1", key_id)
            }
            Credential::Participant { .. } | Credential::Channel { .. } => return Ok(()),
        };
        let at = now();
        on_pool!(self, |pool| sqlx::query(sql).bind(id).bind(at).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Stores a new key for the org's agent.
    pub async fn insert_agent_key(
        &self,
        org_id: Uuid,
        agent_id: Uuid,
        key: &NewCredential,
    ) -> Result<AgentKeyRow, StoreError> {
        let sql = concat!(
            "INSERT INTO agent_keys (id, org_id, agent_id, label, prefix, key_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
            key_columns!()
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(key.id)
            .bind(org_id)
            .bind(agent_id)
            .bind(&key.label)
            .bind(&key.prefix)
            .bind(&key.hash[..])
            .bind(now())
            .fetch_one(pool)
            .await)?)
    }

    /// One page of the agent's live keys after `after`, oldest first.
    pub async fn list_agent_keys(
        &self,
        org_id: Uuid,
        agent_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<AgentKeyRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            key_columns!(),
            " FROM agent_keys WHERE org_id = $1 AND agent_id = $2 \
             AND revoked_at IS NULL AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(agent_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Revokes the agent's key; false when the org's agent has no such key. Revoking twice is
    /// not an error.
    pub async fn revoke_agent_key(
        &self,
        org_id: Uuid,
        agent_id: Uuid,
        key_id: Uuid,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE agent_keys SET revoked_at = COALESCE(revoked_at, $4) \
                   WHERE org_id = $1 AND agent_id = $2 AND id = $3";
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(org_id)
            .bind(agent_id)
            .bind(key_id)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        self.access_changed();
        Ok(done > 0)
    }

    /// Stores a new app token for the org.
    pub async fn insert_app_token(
        &self,
        org_id: Uuid,
        token: &NewCredential,
    ) -> Result<AppTokenRow, StoreError> {
        let sql = concat!(
            "INSERT INTO app_tokens (id, org_id, label, prefix, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
            token_columns!()
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(token.id)
            .bind(org_id)
            .bind(&token.label)
            .bind(&token.prefix)
            .bind(&token.hash[..])
            .bind(now())
            .fetch_one(pool)
            .await)?)
    }

    /// One page of the org's live app tokens after `after`, oldest first.
    pub async fn list_app_tokens(
        &self,
        org_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<AppTokenRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM app_tokens WHERE org_id = $1 AND revoked_at IS NULL \
             AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Revokes the org's app token; false when the org has no such token.
    pub async fn revoke_app_token(&self, org_id: Uuid, token_id: Uuid) -> Result<bool, StoreError> {
        let sql = "UPDATE app_tokens SET revoked_at = COALESCE(revoked_at, $3) \
                   WHERE org_id = $1 AND id = $2";
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(org_id)
            .bind(token_id)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        self.access_changed();
        Ok(done > 0)
    }
}
