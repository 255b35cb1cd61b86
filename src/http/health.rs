//! GET /healthz (the process is up), GET /readyz (the database answers) and GET /metrics
//! (Prometheus text). No token needed: none of them shows a tenant's data.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, response::IntoResponse};
use serde_json::json;

use crate::state::Ctx;

pub(super) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(ctx): State<Ctx>) -> impl IntoResponse {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(axum::http::header::CONTENT_TYPE, content_type)], crate::metrics::render(&ctx).await)
}

async fn readyz(State(ctx): State<Ctx>) -> impl IntoResponse {
    let backend = ctx.store.backend();
    match ctx.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready", "database": backend }))),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            let body = json!({ "status": "unavailable", "database": backend });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}
