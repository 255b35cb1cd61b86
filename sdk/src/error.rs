//! The one error type of the client: every failure carries the API's error code and status.

use serde::{Deserialize, Serialize};

/// The JSON envelope of every error the gateway answers: `{ "error": { ... } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub error: ApiErrorBody,
}

/// The body of an error: a stable code to branch on and a message for people and agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiErrorBody {
    /// Stable machine-readable code, such as `not_found`, `invalid_request` or `rate_limited`.
    pub code: String,
    /// What went wrong and what to change, in one or two sentences.
    pub message: String,
    /// Structured context for the error, such as the offending field; often empty.
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Anything that can go wrong when calling the gateway.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gateway answered with an error envelope.
    #[error("{status} {}: {}", body.code, body.message)]
    Api {
        /// The HTTP status of the answer.
        status: u16,
        /// The error the gateway returned.
        body: ApiErrorBody,
        /// Seconds to wait before retrying, from `Retry-After` (set on `rate_limited`).
        retry_after: Option<u64>,
    },
    /// The request never got an answer, or the answer was not what the API documents.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
}

impl Error {
    /// The API's error code, when the gateway answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { body, .. } => Some(&body.code),
            Error::Transport(_) => None,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Transport(e) => e.status().map(|s| s.as_u16()),
        }
    }

    /// Seconds the gateway asked the caller to wait before retrying.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            Error::Transport(_) => None,
        }
    }
}
