//! Credentials: agent keys (`ak_...`) and org app tokens (`kap_...`).
//!
//! A secret is returned once, by the operation that mints it; lists show its prefix only.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Mint a new key for an agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MintAgentKeyRequest {
    /// What the key is for, such as `production`; at most 100 characters; may be empty.
    #[serde(default)]
    #[schemars(extend("pattern" = super::patterns::TEXT, "maxLength" = 100))]
    pub label: String,
}

/// A freshly minted agent key. The plaintext `key` is shown here once and never again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentKeyCreated {
    /// The key's id, for listing and revoking.
    pub id: Uuid,
    /// The agent the key acts as.
    pub agent_id: Uuid,
    /// What the key is for.
    pub label: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// The secret key (`ak_...`); store it now, it cannot be shown again.
    pub key: String,
    /// When the key was minted.
    pub created_at: DateTime<Utc>,
}

/// An agent key as lists show it: never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentKey {
    /// The key's id.
    pub id: Uuid,
    /// The agent the key acts as.
    pub agent_id: Uuid,
    /// What the key is for.
    pub label: String,
    /// The first characters of the key.
    pub prefix: String,
    /// When the key was minted.
    pub created_at: DateTime<Utc>,
    /// When the key was last used, to the minute; absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One page of an agent's active keys, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentKeyList {
    /// The keys of this page; revoked keys are not listed.
    pub keys: Vec<AgentKey>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Mint a new app token for the org.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MintAppTokenRequest {
    /// What the token is for, such as `dashboard`; at most 100 characters; may be empty.
    #[serde(default)]
    #[schemars(extend("pattern" = super::patterns::TEXT, "maxLength" = 100))]
    pub label: String,
}

/// A freshly minted app token. The plaintext `token` is shown here once and never again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppTokenCreated {
    /// The token's id, for listing and revoking.
    pub id: Uuid,
    /// The org the token acts for.
    pub org_id: Uuid,
    /// What the token is for.
    pub label: String,
    /// The first characters of the token.
    pub prefix: String,
    /// The secret token (`kap_...`); store it now, it cannot be shown again.
    pub token: String,
    /// When the token was minted.
    pub created_at: DateTime<Utc>,
}

/// An app token as lists show it: never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppToken {
    /// The token's id.
    pub id: Uuid,
    /// The org the token acts for.
    pub org_id: Uuid,
    /// What the token is for.
    pub label: String,
    /// The first characters of the token.
    pub prefix: String,
    /// When the token was minted.
    pub created_at: DateTime<Utc>,
    /// When the token was last used, to the minute; absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One page of the org's active app tokens, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppTokenList {
    /// The tokens of this page; revoked tokens are not listed.
    pub tokens: Vec<AppToken>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
