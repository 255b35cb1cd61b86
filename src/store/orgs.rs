//! Orgs: the tenants. An org is created with its first app token, and on the very first start
//! also with its first agent and that agent's key, all in one transaction.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::credentials::NewCredential;
use super::{Store, StoreError, now, on_pool};

/// An org as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    /// The org's id.
    pub id: Uuid,
    /// Its unique name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Everything written when an org is created.
#[derive(Debug)]
pub struct NewOrg {
    /// The new org's id.
    pub id: Uuid,
    /// Its unique name.
    pub name: String,
    /// Its first app token.
    pub token: NewCredential,
    /// Optionally a first agent (id, name) and a key for it.
    pub first_agent: Option<(Uuid, String, NewCredential)>,
}

const INSERT_ORG: &str = "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)";
const INSERT_TOKEN: &str = "INSERT INTO app_tokens (id, org_id, label, prefix, token_hash, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_AGENT: &str = "INSERT INTO agents (id, org_id, name, description, metadata, \
     created_at, updated_at) VALUES ($1, $2, $3, NULL, $4, $5, $5)";
const INSERT_KEY: &str = "INSERT INTO agent_keys (id, org_id, agent_id, label, prefix, \
     key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

impl Store {
    /// Creates an org with its first token (and agent, if given) in one transaction.
    /// An org of the same name answers [`StoreError::Duplicate`].
    pub async fn create_org(&self, org: &NewOrg) -> Result<OrgRow, StoreError> {
        let at = now();
        on_pool!(self, |pool| {
            let turn = self.write_turn().await?;
            let mut tx = pool.begin_with(turn.begin).await?;
            sqlx::query(INSERT_ORG).bind(org.id).bind(&org.name).bind(at).execute(&mut *tx).await?;
            let t = &org.token;
            sqlx::query(INSERT_TOKEN)
                .bind(t.id)
                .bind(org.id)
                .bind(&t.label)
                .bind(&t.prefix)
                .bind(&t.hash[..])
                .bind(at)
                .execute(&mut *tx)
                .await?;
            if let Some((agent_id, name, key)) = &org.first_agent {
                sqlx::query(INSERT_AGENT)
                    .bind(agent_id)
                    .bind(org.id)
                    .bind(name)
                    .bind(Json(serde_json::json!({})))
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(INSERT_KEY)
                    .bind(key.id)
                    .bind(org.id)
                    .bind(agent_id)
                    .bind(&key.label)
                    .bind(&key.prefix)
                    .bind(&key.hash[..])
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(OrgRow { id: org.id, name: org.name.clone(), created_at: at })
    }

    /// Whether any org exists yet: false only on a brand-new database.
    pub async fn has_orgs(&self) -> Result<bool, StoreError> {
        let row: Option<(Uuid,)> =
            on_pool!(self, |pool| sqlx::query_as("SELECT id FROM orgs LIMIT 1")
                .fetch_optional(pool)
                .await)?;
        Ok(row.is_some())
    }

    /// All orgs, oldest first; for the operator's `admin` commands.
    pub async fn list_orgs(&self) -> Result<Vec<OrgRow>, StoreError> {
        let sql = "SELECT id, name, created_at FROM orgs ORDER BY id";
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?)
    }
}
