//! Errors as HTTP answers: the status and the JSON envelope, logged once here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (self.status, Json(self.envelope())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            let headers = response.headers_mut();
            let figures = [
                ("retry-after", "retry_after"),
                ("ratelimit-limit", "limit"),
                ("ratelimit-remaining", "remaining"),
                ("ratelimit-reset", "reset"),
            ];
            for (name, field) in figures {
                if let Some(value) = self.details.get(field).and_then(serde_json::Value::as_i64) {
                    headers.insert(name, HeaderValue::from(value));
                }
            }
        }
        response
    }
}

/// The answer for a path no route serves.
pub(super) async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; every route is listed in /openapi.json",
    )
}

/// The answer for a method a route does not serve.
pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not serve that method; see /openapi.json",
    )
}
