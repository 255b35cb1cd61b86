//! Agents: `create_agent` (upsert by name), `list_agents`, `delete_agent` (soft).

use axum::http::Method;
use kapable_sdk::comms::types::{Agent, AgentList, CreateAgentRequest, Deleted, ListAgentsQuery};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::validate;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pagination;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;

/// Names one agent of the caller's org.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AgentPath {
    /// The agent's id.
    pub agent_id: Uuid,
}

/// POST /v1/agents
pub fn create_agent() -> Operation {
    Operation::declare("create_agent", Method::POST, "/v1/agents")
        .describe(
            "Create an agent of the org, or update the live agent that has the same `name` \
             (201 when created, 200 when it existed). Give it a key with `mint_agent_key` so it \
             can connect.",
        )
        .handle(create)
}

async fn create(ctx: Ctx, caller: Caller, input: CreateAgentRequest) -> ApiResult<Reply<Agent>> {
    let org_id = caller.require_org()?;
    let name = validate::name("name", &input.name, validate::NAME_MAX)?;
    let description = validate::optional_text("description", input.description.as_deref())?;
    let metadata = input
        .metadata
        .as_ref()
        .map(|m| validate::object("metadata", m, validate::METADATA_MAX_BYTES))
        .transpose()?;

    let (row, created) = ctx.store.upsert_agent(org_id, name, description, metadata).await?;
    Ok(Reply::upserted(row.into(), created))
}

/// GET /v1/agents
pub fn list_agents() -> Operation {
    Operation::declare("list_agents", Method::GET, "/v1/agents")
        .describe(
            "List the org's agents, oldest first, `limit` per page (1 to 200, default 50). \
             When `next_cursor` is present, pass it as `cursor` to get the next page.",
        )
        .handle(list)
}

async fn list(ctx: Ctx, caller: Caller, input: ListAgentsQuery) -> ApiResult<Reply<AgentList>> {
    let org_id = caller.require_org()?;
    let (after, limit) = pagination::page_of(input.cursor.as_deref(), input.limit)?;

    let rows = ctx.store.list_agents(org_id, after, limit.fetch()).await?;
    let mut agents: Vec<Agent> = rows.into_iter().map(Agent::from).collect();
    let next_cursor = pagination::finish(&mut agents, limit, |agent| agent.id);
    Ok(Reply::ok(AgentList { agents, next_cursor }))
}

/// DELETE /v1/agents/{agent_id}
pub fn delete_agent() -> Operation {
    Operation::declare("delete_agent", Method::DELETE, "/v1/agents/{agent_id}")
        .describe(
            "Delete an agent. Its keys stop working at once and it disappears from lists; its \
             name becomes free for a new agent.",
        )
        .handle(delete)
}

async fn delete(ctx: Ctx, caller: Caller, input: AgentPath) -> ApiResult<Reply<Deleted>> {
    let org_id = caller.require_org()?;
    if !ctx.store.delete_agent(org_id, input.agent_id).await? {
        return Err(ApiError::not_found("agent"));
    }
    Ok(Reply::ok(Deleted { deleted: true }))
}
