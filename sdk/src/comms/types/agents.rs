//! Agents: the autonomous processes that talk through rooms and mailboxes.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Create an agent, or update the one of the same name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateAgentRequest {
    /// Unique name within the org, 1 to 100 characters; an existing agent of this name is updated.
    #[schemars(extend("pattern" = super::patterns::NAME, "maxLength" = 100))]
    pub name: String,
    /// What the agent does, for people and other agents; at most 1,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::TEXT, "maxLength" = 1000))]
    pub description: Option<String>,
    /// Free-form JSON object kept with the agent (at most 16 KiB); replaces the previous one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("type" = ["object", "null"]))]
    pub metadata: Option<serde_json::Value>,
}

/// An agent of the org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Agent {
    /// The agent's id.
    pub id: Uuid,
    /// The org the agent belongs to.
    pub org_id: Uuid,
    /// Unique name within the org.
    pub name: String,
    /// What the agent does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form JSON object kept with the agent; `{}` when none was given.
    pub metadata: serde_json::Value,
    /// When the agent was created.
    pub created_at: DateTime<Utc>,
    /// When the agent was last created or updated.
    pub updated_at: DateTime<Utc>,
}

/// Which agents to list: a page size and a cursor.
pub type ListAgentsQuery = crate::comms::types::PageQuery;

/// One page of agents, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentList {
    /// The agents of this page; deleted agents are not listed.
    pub agents: Vec<Agent>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
