//! POST /v1/telegram/webhook: updates from Telegram when the bridge runs in webhook mode. The
//! request must carry the secret the bridge gave Telegram with `setWebhook`, compared in
//! constant time; anything else is refused before it is read.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use teloxide_core::types::Update;

use crate::bridge::telegram::handle_update;
use crate::error::ApiError;
use crate::state::Ctx;

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

pub(super) fn routes() -> Router<Ctx> {
    Router::new().route("/v1/telegram/webhook", post(webhook))
}

async fn webhook(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(telegram) = ctx.telegram.as_ref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the Telegram bridge is off",
        ));
    };
    let given =
        headers.get(SECRET_HEADER).map(axum::http::HeaderValue::as_bytes).unwrap_or_default();
    if !telegram.webhook_secret_matches(given) {
        return Err(ApiError::unauthorized("missing or wrong X-Telegram-Bot-Api-Secret-Token"));
    }
    let update: Update = serde_json::from_slice(&body)
        .map_err(|error| ApiError::invalid(format!("not a Telegram update: {error}")))?;
    // An error answer makes Telegram deliver the update again later.
    handle_update(&ctx, telegram, update).await.map_err(ApiError::unavailable)?;
    Ok(StatusCode::OK)
}
