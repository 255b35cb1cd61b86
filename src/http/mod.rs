//! The HTTP surface: REST, MCP, OpenAPI and health, assembled into one router.
//!
//! The adapters are generated from the registry and hold no business logic. Every request gets
//! one span keyed by its route template (`/v1/mcp/{token}`, never the token itself), and one
//! summary event at debug level when it completes.

mod errors;
pub mod guard;
mod health;
mod mcp;
mod openapi;

pub use openapi::document as openapi_document;
mod rest;
mod streams;
mod telegram;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::state::Ctx;

/// The whole HTTP application of the gateway.
pub fn router(ctx: Ctx) -> anyhow::Result<Router> {
    let cors = cors(&ctx.settings.cors_origin)?;
    let body_limit = ctx.settings.max_body_bytes;
    let app = Router::new()
        .merge(rest::routes())
        .merge(mcp::routes(&ctx))
        .merge(openapi::routes())
        .merge(health::routes())
        .merge(streams::routes())
        .merge(telegram::routes())
        .fallback(errors::no_route)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), count))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
                    tracing::info_span!(
                        "request",
                        http.method = %request.method(),
                        http.route = route.unwrap_or("unmatched"),
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(cors)
        .with_state(ctx);
    Ok(app)
}

/// Counts each request by its route template and status for `/metrics`, around the guard
/// (one middleware, not two: each costs a boxed service and future per request).
async fn count(
    State(ctx): State<Ctx>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let route = route.unwrap_or("unmatched").to_owned();
    let response = guard::guard(&ctx, request, next).await;
    let status = response.status().as_u16();
    ctx.metrics.request(method.as_str(), route, status, started.elapsed());
    response
}

/// CORS for the configured browser origins; none allowed when the list is empty.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let origins = origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o)
                .map_err(|_| anyhow::anyhow!("CORS_ORIGIN: `{o}` is not a valid origin"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .max_age(Duration::from_secs(3600)))
}
