//! The operation registry: every operation of the API declared once.
//!
//! An [`Operation`] holds its name, description, HTTP method and path, the callers it admits,
//! the schemas of its input and output, and its handler with the types erased to JSON. The MCP
//! tools, the REST routes and the OpenAPI document are all built by walking [`crate::ops::all`];
//! no adapter knows any operation by name. [`Operation::call`] is the one entry point the
//! adapters use: it admits the caller, decodes the input, runs the handler and encodes the
//! output.

mod input;
pub mod schema;

use std::future::Future;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use input::{InputShape, RawInput};
pub use schema::SchemaFn;

use crate::auth::{Caller, Callers};
use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;

/// What a handler returns: its output, and whether an upsert created the row.
#[derive(Debug)]
pub struct Reply<O> {
    output: O,
    status: Option<StatusCode>,
}

impl<O> Reply<O> {
    /// The operation's usual success status.
    pub fn ok(output: O) -> Self {
        Self { output, status: None }
    }

    /// An upsert: 201 when it created the row, 200 when it found the existing one.
    pub fn upserted(output: O, created: bool) -> Self {
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        Self { output, status: Some(status) }
    }
}

impl<O> From<O> for Reply<O> {
    fn from(output: O) -> Self {
        Self::ok(output)
    }
}

/// The answer of a successful call: the status REST uses, and the output as JSON.
#[derive(Debug)]
pub struct Outcome {
    /// 200, 201, 202 or 204.
    pub status: StatusCode,
    /// The output object.
    pub body: Value,
}

type Handler =
    Arc<dyn Fn(Ctx, Caller, Value) -> BoxFuture<'static, ApiResult<Outcome>> + Send + Sync>;

/// One operation of the API.
pub struct Operation {
    /// The MCP tool name, snake_case.
    pub name: &'static str,
    /// What it does and when to use it; the first sentence doubles as the summary.
    pub description: &'static str,
    /// The REST method.
    pub method: Method,
    /// The REST path, with parameters named after what they identify (`{agent_id}`).
    pub path: &'static str,
    /// Who may call it.
    pub callers: Callers,
    /// The usual success status.
    pub success: StatusCode,
    /// Error codes beyond the common ones that this operation answers, with their status.
    pub errors: &'static [(StatusCode, &'static str)],
    /// The schema of the input (path, query and body merged).
    pub input: SchemaFn,
    /// The schema of the output.
    pub output: SchemaFn,
    /// The input's fields and their kinds, for merging and for naming unknown fields.
    pub shape: InputShape,
    /// The field that takes a REST body sent as something other than JSON, base64-encoded
    /// (raw mail, for instance); `None` when the body must be JSON.
    pub raw_body: Option<&'static str>,
    /// The largest REST body this operation accepts, when it differs from the gateway's.
    pub body_limit: Option<usize>,
    handler: Handler,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Operation({} {} {})", self.name, self.method, self.path)
    }
}

/// An operation under construction; [`Declare::handle`] completes it.
#[derive(Debug)]
pub struct Declare {
    name: &'static str,
    method: Method,
    path: &'static str,
    description: &'static str,
    callers: Callers,
    success: StatusCode,
    errors: &'static [(StatusCode, &'static str)],
    raw_body: Option<&'static str>,
    body_limit: Option<usize>,
}

impl Operation {
    /// Declares an operation answering `method path`.
    pub fn declare(name: &'static str, method: Method, path: &'static str) -> Declare {
        let success = match method {
            Method::POST => StatusCode::CREATED,
            Method::DELETE => StatusCode::NO_CONTENT,
            _ => StatusCode::OK,
        };
        Declare {
            name,
            method,
            path,
            description: "",
            callers: Callers::ORG,
            success,
            errors: &[],
            raw_body: None,
            body_limit: None,
        }
    }

    /// The path parameters, in order of appearance.
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// Whether the operation changes nothing.
    pub fn is_read_only(&self) -> bool {
        self.method == Method::GET
    }

    /// Checks that the operation admits this caller: 401 without a token, 403 for a kind of
    /// token it does not take.
    pub fn admit(&self, caller: &Caller) -> ApiResult<()> {
        if self.callers.admits(caller.kind()) {
            return Ok(());
        }
        let needs = self.callers.describe();
        Err(match caller {
            Caller::Anonymous => ApiError::unauthorized(format!(
                "`{}` needs {needs}: send it as `Authorization: Bearer <token>`",
                self.name
            )),
            _ => ApiError::forbidden(format!("`{}` needs {needs}", self.name)),
        })
    }

    /// Runs the operation for `caller` with a merged JSON input.
    pub async fn call(&self, ctx: Ctx, caller: Caller, input: Value) -> ApiResult<Outcome> {
        self.admit(&caller)?;
        (self.handler)(ctx, caller, input).await
    }
}

impl Declare {
    /// What the operation does, for the LLM reading the tool list and the OpenAPI reader.
    pub fn describe(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Who may call it (default: org app tokens only).
    pub fn callers(mut self, callers: Callers) -> Self {
        self.callers = callers;
        self
    }

    /// The usual success status (default: 201 for POST, 204 for DELETE, else 200).
    pub fn success(mut self, status: StatusCode) -> Self {
        self.success = status;
        self
    }

    /// Operation-specific error codes, listed in the OpenAPI document.
    pub fn errors(mut self, errors: &'static [(StatusCode, &'static str)]) -> Self {
        self.errors = errors;
        self
    }

    /// Lets REST callers send a non-JSON body, which arrives base64-encoded in `field`.
    pub fn raw_body(mut self, field: &'static str) -> Self {
        self.raw_body = Some(field);
        self
    }

    /// Accepts REST bodies up to `bytes`, instead of the gateway's `--max-body-bytes`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    /// Completes the operation with its handler: `async fn(Ctx, Caller, Input) -> Reply<Output>`.
    pub fn handle<I, O, F, Fut>(self, handler: F) -> Operation
    where
        I: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(Ctx, Caller, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult<Reply<O>>> + Send + 'static,
    {
        let shape = InputShape::of::<I>();
        let decoder = shape.clone();
        let success = self.success;
        let handler = Arc::new(handler);
        let erased: Handler = Arc::new(move |ctx, caller, input| {
            let decoded = decoder.decode::<I>(input);
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                let reply = handler(ctx, caller, decoded?).await?;
                let body = serde_json::to_value(&reply.output).map_err(ApiError::internal)?;
                Ok(Outcome { status: reply.status.unwrap_or(success), body })
            })
        });
        Operation {
            name: self.name,
            description: self.description,
            method: self.method,
            path: self.path,
            callers: self.callers,
            success: self.success,
            errors: self.errors,
            input: schema::input_of::<I>,
            output: schema::output_of::<O>,
            shape,
            raw_body: self.raw_body,
            body_limit: self.body_limit,
            handler: erased,
        }
    }
}
