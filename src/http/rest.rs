//! The REST adapter: one route per operation of the registry.
//!
//! A request's path parameters, query, body and `Idempotency-Key` are merged into the
//! operation's input; the outcome is answered with the operation's status, and an error with
//! its status and the JSON envelope.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use base64::Engine as _;
use serde_json::Value;

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::ops;
use crate::registry::{Operation, RawInput};
use crate::state::Ctx;

pub(super) fn routes() -> Router<Ctx> {
    let mut by_path: BTreeMap<&str, MethodRouter<Ctx>> = BTreeMap::new();
    for op in ops::all() {
        let filter =
            MethodFilter::try_from(op.method.clone()).expect("operations use standard methods");
        let handler = move |State(ctx): State<Ctx>,
                            path: Result<Path<Vec<(String, String)>>, PathRejection>,
                            RawQuery(query): RawQuery,
                            headers: HeaderMap,
                            body: Result<Bytes, BytesRejection>| async move {
            match serve(op, ctx, path, query, &headers, body).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            }
        };
        let mut route = MethodRouter::new().on(filter, handler);
        if let Some(limit) = op.body_limit {
            route = route.layer(DefaultBodyLimit::max(limit));
        }
        let routes = by_path.remove(op.path).unwrap_or_default();
        by_path.insert(op.path, routes.merge(route));
    }
    by_path.into_iter().fold(Router::new(), |router, (path, route)| {
        router.route(path, route.fallback(super::errors::method_not_allowed))
    })
}

async fn serve(
    op: &'static Operation,
    ctx: Ctx,
    path: Result<Path<Vec<(String, String)>>, PathRejection>,
    query: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let caller = ctx.auth.authenticate(&ctx.store, auth::bearer(headers)?).await?;
    op.admit(&caller)?;

    let raw = RawInput {
        path: path.map_err(|e| ApiError::invalid(e.body_text()))?.0,
        query: parse_query(query.as_deref())?,
        body: parse_body(op, headers, body)?,
        idempotency_key: text_header(headers, "idempotency-key")?,
    };
    let input = op.shape.merge(raw)?;
    let outcome = op.call(ctx, caller, input).await?;

    Ok(match outcome.status {
        StatusCode::NO_CONTENT => StatusCode::NO_CONTENT.into_response(),
        status => (status, axum::Json(outcome.body)).into_response(),
    })
}

fn parse_query(query: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    let query = query.unwrap_or_default();
    serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::invalid(format!("the query string is malformed: {e}")))
}

fn parse_body(
    op: &Operation,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Option<Value>> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "invalid_request"
        };
        ApiError::new(status, code, rejection.body_text())
    })?;
    // No body is an empty one; a body of whitespace is not JSON, and is refused below.
    if body.is_empty() {
        return Ok(None);
    }
    let kind = headers.get(header::CONTENT_TYPE).map(|k| k.to_str().unwrap_or_default());
    let kind = kind.map(str::to_ascii_lowercase);
    let json =
        kind.as_deref().is_some_and(|k| k.starts_with("application/json") || k.contains("+json"));
    if let (false, Some(field)) = (json, op.raw_body) {
        // An operation that takes raw bodies gets them whole, whatever their encoding.
        let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
        return Ok(Some(serde_json::json!({ field: encoded })));
    }
    if kind.is_some() && !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}")))
}

fn text_header(headers: &HeaderMap, name: &str) -> ApiResult<Option<String>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::invalid(format!("the `{name}` header must be plain text")))
        })
        .transpose()
}
