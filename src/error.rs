//! The one error type at the edge.
//!
//! Operations return [`ApiError`]; the REST adapter turns it into a status and the JSON envelope,
//! the MCP adapter into an `isError` tool result carrying the same code. An internal error keeps
//! its cause for the log and answers a generic message: the cause is logged once, where the error
//! is answered, never sent to the client.

use std::borrow::Cow;

use axum::http::StatusCode;
use kapable_sdk::{ApiErrorBody, ErrorEnvelope};
use serde_json::{Value, json};

/// Shorthand for the result of an operation.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error answered to a caller: a status, a stable code and a message that says what to change.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status it answers with.
    pub status: StatusCode,
    /// The stable code clients branch on, such as `not_found`.
    pub code: Cow<'static, str>,
    /// What went wrong and what to change.
    pub message: String,
    /// Structured context, such as the offending field.
    pub details: Value,
    /// The cause of an internal error, for the log only.
    pub cause: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            details: json!({}),
            cause: None,
        }
    }

    /// Adds structured details to the error.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 `invalid_request`: the input is wrong; the message names the field.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 400 `invalid_request` about one field, named in the details too.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        Self::invalid(format!("`{field}`: {message}")).with_details(json!({ "field": field }))
    }

    /// 401 `unauthorized`: no credential, or one that is not valid.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`: the caller is known but may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found` for a resource of the caller's org (or one it may not know exists).
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what} in this org"))
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 429 `rate_limited`: a send limit is full. The details carry what the REST answer also
    /// sends as `Retry-After` and `RateLimit-*` headers.
    pub fn rate_limited(refusal: &crate::mail::policy::Refusal) -> Self {
        let window = refusal.window.name();
        let message = format!(
            "this mailbox has sent {} of its {} per {window}; retry in {} s, or raise its quota \
             with `set_mailbox_quotas`",
            refusal.sent, refusal.limit, refusal.retry_after
        );
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).with_details(json!({
            "window": window,
            "limit": refusal.limit,
            "remaining": 0,
            "reset": refusal.retry_after,
            "retry_after": refusal.retry_after,
        }))
    }

    /// 503 `unavailable`: the database or another dependency does not answer; retry later.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the gateway cannot reach its database right now; retry in a few seconds",
        );
        error.cause = Some(cause.into());
        error
    }

    /// 500 `internal`: a generic message for the client, the cause kept for the log.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the gateway failed to handle this request; it has been logged",
        );
        error.cause = Some(cause.into());
        error
    }

    /// Logs the cause once, at the level its status deserves.
    pub fn log(&self) {
        if let Some(cause) = &self.cause {
            if self.status.is_server_error() {
                tracing::error!(error.code = %self.code, error.cause = format!("{cause:#}"));
            }
        } else if self.status.is_server_error() {
            tracing::error!(error.code = %self.code, error.message = %self.message);
        }
    }

    /// The JSON envelope: `{ "error": { "code", "message", "details" } }`.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ApiErrorBody {
                code: self.code.to_string(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match error {
            StoreError::Unavailable(cause) => Self::unavailable(cause),
            StoreError::Duplicate(cause) => {
                let mut error = Self::conflict("an object with the same unique key already exists");
                error.cause = Some(cause.into());
                error
            }
            StoreError::Other(cause) => Self::internal(cause),
        }
    }
}
