//! Agent keys: `mint_agent_key`, `list_agent_keys`, `revoke_agent_key`.
//!
//! A key's plaintext exists only in the answer of `mint_agent_key`; the store keeps its hash.

use axum::http::Method;
use kapable_sdk::comms::types::{
    AgentKey, AgentKeyCreated, AgentKeyList, Deleted, MintAgentKeyRequest, PageQuery,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::validate;
use crate::auth::{Caller, Secret, TokenKind};
use crate::error::{ApiError, ApiResult};
use crate::pagination;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;

/// The longest label a key or token may carry.
pub(super) const LABEL_MAX: usize = 100;

/// Mint a key for the agent `agent_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MintAgentKeyInput {
    /// The agent that the key will act as.
    pub agent_id: Uuid,
    #[serde(flatten)]
    body: MintAgentKeyRequest,
}

/// List the keys of the agent `agent_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListAgentKeysInput {
    /// The agent whose keys to list.
    pub agent_id: Uuid,
    #[serde(flatten)]
    page: PageQuery,
}

/// Revoke the key `key_id` of the agent `agent_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RevokeAgentKeyInput {
    /// The agent the key belongs to.
    pub agent_id: Uuid,
    /// The key to revoke.
    pub key_id: Uuid,
}

/// POST /v1/agents/{agent_id}/keys
pub fn mint_agent_key() -> Operation {
    Operation::declare("mint_agent_key", Method::POST, "/v1/agents/{agent_id}/keys")
        .describe(
            "Mint a new key (`ak_...`) for an agent. The answer holds the plaintext `key` once; \
             it cannot be shown again, so hand it to the agent now. The agent connects over MCP \
             at `/v1/mcp/<key>` or sends it as `Authorization: Bearer <key>`.",
        )
        .handle(mint)
}

async fn mint(
    ctx: Ctx,
    caller: Caller,
    input: MintAgentKeyInput,
) -> ApiResult<Reply<AgentKeyCreated>> {
    let org_id = caller.require_org()?;
    let label = validate::text("label", &input.body.label, LABEL_MAX)?;
    if ctx.store.get_agent(org_id, input.agent_id).await?.is_none() {
        return Err(ApiError::not_found("agent"));
    }

    let secret = Secret::generate(TokenKind::Agent);
    let key = secret.credential(label);
    let row = ctx.store.insert_agent_key(org_id, input.agent_id, &key).await?;

    let shown = AgentKey::from(row);
    Ok(Reply::ok(AgentKeyCreated {
        id: shown.id,
        agent_id: shown.agent_id,
        label: shown.label,
        prefix: shown.prefix,
        key: secret.expose().to_owned(),
        created_at: shown.created_at,
    }))
}

/// GET /v1/agents/{agent_id}/keys
pub fn list_agent_keys() -> Operation {
    Operation::declare("list_agent_keys", Method::GET, "/v1/agents/{agent_id}/keys")
        .describe(
            "List an agent's live keys, oldest first: id, label, prefix, when minted and when \
             last used. Secrets are never listed. Page with `limit` and `cursor`.",
        )
        .handle(list)
}

async fn list(
    ctx: Ctx,
    caller: Caller,
    input: ListAgentKeysInput,
) -> ApiResult<Reply<AgentKeyList>> {
    let org_id = caller.require_org()?;
    let (after, limit) = pagination::page_of(input.page.cursor.as_deref(), input.page.limit)?;
    if ctx.store.get_agent(org_id, input.agent_id).await?.is_none() {
        return Err(ApiError::not_found("agent"));
    }

    let rows = ctx.store.list_agent_keys(org_id, input.agent_id, after, limit.fetch()).await?;
    let mut keys: Vec<AgentKey> = rows.into_iter().map(AgentKey::from).collect();
    let next_cursor = pagination::finish(&mut keys, limit, |key| key.id);
    Ok(Reply::ok(AgentKeyList { keys, next_cursor }))
}

/// DELETE /v1/agents/{agent_id}/keys/{key_id}
pub fn revoke_agent_key() -> Operation {
    Operation::declare("revoke_agent_key", Method::DELETE, "/v1/agents/{agent_id}/keys/{key_id}")
        .describe(
            "Revoke an agent key. Every request made with it from now on, MCP included, is \
             refused with `unauthorized`. Revoking a revoked key is not an error.",
        )
        .handle(revoke)
}

async fn revoke(ctx: Ctx, caller: Caller, input: RevokeAgentKeyInput) -> ApiResult<Reply<Deleted>> {
    let org_id = caller.require_org()?;
    if !ctx.store.revoke_agent_key(org_id, input.agent_id, input.key_id).await? {
        return Err(ApiError::not_found("agent key"));
    }
    Ok(Reply::ok(Deleted { deleted: true }))
}
