//! App tokens: `mint_app_token`, `list_app_tokens`, `revoke_app_token`.
//!
//! The `org_id` in the path must be the caller's own org; any other answers 404.

use axum::http::Method;
use kapable_sdk::comms::types::{
    AppToken, AppTokenCreated, AppTokenList, Deleted, MintAppTokenRequest, PageQuery,
};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::agent_keys::LABEL_MAX;
use super::validate;
use crate::auth::{Caller, Secret, TokenKind};
use crate::error::{ApiError, ApiResult};
use crate::pagination;
use crate::registry::{Operation, Reply};
use crate::state::Ctx;

/// Mint an app token for the org `org_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MintAppTokenInput {
    /// The org; must be the caller's own.
    pub org_id: Uuid,
    #[serde(flatten)]
    body: MintAppTokenRequest,
}

/// List the app tokens of the org `org_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListAppTokensInput {
    /// The org; must be the caller's own.
    pub org_id: Uuid,
    #[serde(flatten)]
    page: PageQuery,
}

/// Revoke the app token `token_id` of the org `org_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RevokeAppTokenInput {
    /// The org; must be the caller's own.
    pub org_id: Uuid,
    /// The token to revoke.
    pub token_id: Uuid,
}

/// POST /v1/orgs/{org_id}/app-tokens
pub fn mint_app_token() -> Operation {
    Operation::declare("mint_app_token", Method::POST, "/v1/orgs/{org_id}/app-tokens")
        .describe(
            "Mint a new org app token (`kap_...`) for a service or dashboard. The answer holds \
             the plaintext `token` once; it cannot be shown again.",
        )
        .handle(mint)
}

async fn mint(
    ctx: Ctx,
    caller: Caller,
    input: MintAppTokenInput,
) -> ApiResult<Reply<AppTokenCreated>> {
    let org_id = caller.require_own_org(input.org_id)?;
    let label = validate::text("label", &input.body.label, LABEL_MAX)?;

    let secret = Secret::generate(TokenKind::App);
    let row = ctx.store.insert_app_token(org_id, &secret.credential(label)).await?;

    let shown = AppToken::from(row);
    Ok(Reply::ok(AppTokenCreated {
        id: shown.id,
        org_id: shown.org_id,
        label: shown.label,
        prefix: shown.prefix,
        token: secret.expose().to_owned(),
        created_at: shown.created_at,
    }))
}

/// GET /v1/orgs/{org_id}/app-tokens
pub fn list_app_tokens() -> Operation {
    Operation::declare("list_app_tokens", Method::GET, "/v1/orgs/{org_id}/app-tokens")
        .describe(
            "List the org's live app tokens, oldest first: id, label, prefix, when minted and \
             when last used. Secrets are never listed. Page with `limit` and `cursor`.",
        )
        .handle(list)
}

async fn list(
    ctx: Ctx,
    caller: Caller,
    input: ListAppTokensInput,
) -> ApiResult<Reply<AppTokenList>> {
    let org_id = caller.require_own_org(input.org_id)?;
    let (after, limit) = pagination::page_of(input.page.cursor.as_deref(), input.page.limit)?;

    let rows = ctx.store.list_app_tokens(org_id, after, limit.fetch()).await?;
    let mut tokens: Vec<AppToken> = rows.into_iter().map(AppToken::from).collect();
    let next_cursor = pagination::finish(&mut tokens, limit, |token| token.id);
    Ok(Reply::ok(AppTokenList { tokens, next_cursor }))
}

/// DELETE /v1/orgs/{org_id}/app-tokens/{token_id}
pub fn revoke_app_token() -> Operation {
    Operation::declare(
        "revoke_app_token",
        Method::DELETE,
        "/v1/orgs/{org_id}/app-tokens/{token_id}",
    )
    .describe(
        "Revoke an org app token; it is refused from the next request on. A token may revoke \
             itself. Revoking a revoked token is not an error.",
    )
    .handle(revoke)
}

async fn revoke(ctx: Ctx, caller: Caller, input: RevokeAppTokenInput) -> ApiResult<Reply<Deleted>> {
    let org_id = caller.require_own_org(input.org_id)?;
    if !ctx.store.revoke_app_token(org_id, input.token_id).await? {
        return Err(ApiError::not_found("app token"));
    }
    Ok(Reply::ok(Deleted { deleted: true }))
}
