//! Agents: upserted by name within an org, soft-deleted.

use chrono::{DateTime, Utc};
use kapable_sdk::comms::types::Agent;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Store, StoreError, now, on_pool};

/// An agent as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    id: Uuid,
    org_id: Uuid,
    name: String,
    description: Option<String>,
    metadata: Json<serde_json::Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl AgentRow {
    /// The agent's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl From<AgentRow> for Agent {
    fn from(row: AgentRow) -> Self {
        Agent {
            id: row.id,
            org_id: row.org_id,
            name: row.name,
            description: row.description,
            metadata: row.metadata.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The columns of [`AgentRow`], for `concat!` into static statements.
macro_rules! columns {
    () => {
        "id, org_id, name, description, metadata, created_at, updated_at"
    };
}

impl Store {
    /// Creates the agent, or updates the live one of the same name. Returns the row and whether
    /// it was created. A field left `None` keeps its stored value on update.
    pub async fn upsert_agent(
        &self,
        org_id: Uuid,
        name: &str,
        description: Option<&str>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<(AgentRow, bool), StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        let sql = concat!(
            "INSERT INTO agents (id, org_id, name, description, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $7, $7) \
             ON CONFLICT (org_id, name) WHERE deleted_at IS NULL DO UPDATE SET \
             description = COALESCE(excluded.description, agents.description), \
             metadata = COALESCE($6, agents.metadata), updated_at = excluded.updated_at \
             RETURNING ",
            columns!()
        );
        let row: AgentRow = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .bind(org_id)
            .bind(name)
            .bind(description)
            .bind(Json(metadata.cloned().unwrap_or_else(|| serde_json::json!({}))))
            .bind(metadata.map(Json))
            .bind(at)
            .fetch_one(pool)
            .await)?;
        let created = row.id == id;
        Ok((row, created))
    }

    /// One page of the org's live agents with ids after `after`, oldest first.
    pub async fn list_agents(
        &self,
        org_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<AgentRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM agents WHERE org_id = $1 AND deleted_at IS NULL \
             AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// The org's live agent with this id, if any.
    pub async fn get_agent(&self, org_id: Uuid, id: Uuid) -> Result<Option<AgentRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM agents WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(org_id)
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Soft-deletes the org's live agent with this id; false when there was none.
    pub async fn delete_agent(&self, org_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let sql = "UPDATE agents SET deleted_at = $3 \
                   WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL";
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(org_id)
            .bind(id)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        self.access_changed();
        Ok(done > 0)
    }
}
