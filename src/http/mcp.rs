//! The MCP adapter: the registry served as tools over Streamable HTTP.
//!
//! Served stateless (no session manager, JSON responses): identity comes from the token on every
//! request, so a restart or a second instance never strands a client. The token is taken from
//! the path (`/v1/mcp/{token}`) or from `Authorization: Bearer`, checked before rmcp sees the
//! request (a bad one is an HTTP 401, which MCP clients show as an auth problem), and handed to
//! the tool calls as a [`Caller`] in the request extensions. The path given to rmcp no longer
//! holds the token.

use std::sync::{Arc, LazyLock};

use axum::extract::{Path, Request, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::ops;
use crate::registry::{Operation, schema};
use crate::state::Ctx;

/// Told to every MCP client on initialize; the first thing an agent reads about this server.
const INSTRUCTIONS: &str = "kapable-comms connects you with other agents and people. Call \
    `whoami` to learn which agent you are. Every tool answers a JSON object; on failure the \
    result has isError set and carries `{\"error\": {\"code\", \"message\"}}`: read the message, \
    it says what to change.";

type Service = StreamableHttpService<Tools, NeverSessionManager>;

pub(super) fn routes(ctx: &Ctx) -> Router<Ctx> {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    hosts.extend(ctx.settings.public_host.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(ctx.settings.max_body_bytes);
    let tools = Tools { ctx: Arc::clone(ctx) };
    let service: Arc<Service> = Arc::new(StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    ));

    Router::new()
        .route("/v1/mcp", any(with_header))
        .route("/v1/mcp/{token}", any(with_path))
        .layer(Extension(service))
}

/// POST /v1/mcp with `Authorization: Bearer <token>`.
async fn with_header(
    State(ctx): State<Ctx>,
    Extension(service): Extension<Arc<Service>>,
    request: Request,
) -> Response {
    serve(ctx, service, None, request).await
}

/// POST /v1/mcp/{token}
async fn with_path(
    State(ctx): State<Ctx>,
    Extension(service): Extension<Arc<Service>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    serve(ctx, service, Some(token), request).await
}

/// Authenticates a POST, then hands the request to rmcp (which answers 405 to GET and DELETE).
async fn serve(
    ctx: Ctx,
    service: Arc<Service>,
    token: Option<String>,
    mut request: Request,
) -> Response {
    if request.method() == Method::POST {
        let token = match token_of(token.as_deref(), &request) {
            Ok(token) => token,
            Err(error) => return error.into_response(),
        };
        match authenticate(&ctx, token.as_deref()).await {
            Ok(caller) => request.extensions_mut().insert(caller),
            Err(error) => return error.into_response(),
        };
    }
    if token.is_some() {
        *request.uri_mut() = Uri::from_static("/v1/mcp");
    }
    service.handle(request).await.into_response()
}

/// The token from the path, or else from the `Authorization` header.
fn token_of(path_token: Option<&str>, request: &Request) -> Result<Option<String>, ApiError> {
    match path_token {
        Some(token) => Ok(Some(token.to_owned())),
        None => Ok(auth::bearer(request.headers())?.map(str::to_owned)),
    }
}

async fn authenticate(ctx: &Ctx, token: Option<&str>) -> Result<Caller, ApiError> {
    match ctx.auth.authenticate(&ctx.store, token).await? {
        Caller::Anonymous => Err(ApiError::unauthorized(
            "MCP needs a token: connect to /v1/mcp/<token> or send `Authorization: Bearer <token>`",
        )),
        caller => Ok(caller),
    }
}

/// The MCP server handler: lists and calls the operations the caller may use.
#[derive(Clone)]
struct Tools {
    ctx: Ctx,
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tools")
    }
}

/// Each operation with its tool definition, built once from the registry.
static TOOLS: LazyLock<Vec<(&'static Operation, Tool)>> =
    LazyLock::new(|| ops::all().iter().map(|op| (op, tool_of(op))).collect());

fn tool_of(op: &Operation) -> Tool {
    let mut input = schema::standalone(op.input, false);
    input.insert("additionalProperties".into(), Value::Bool(false));
    let annotations = ToolAnnotations::new()
        .read_only(op.is_read_only())
        .destructive(op.method == Method::DELETE)
        .idempotent(op.method != Method::POST)
        .open_world(false);
    Tool::new_with_raw(op.name, Some(op.description.into()), Arc::new(input))
        .with_raw_output_schema(Arc::new(schema::standalone(op.output, true)))
        .with_annotations(annotations)
}

fn caller_of(context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| {
            McpError::internal_error("the request carries no authenticated caller", None)
        })
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("kapable-comms", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = caller_of(&context)?;
        let tools = TOOLS
            .iter()
            .filter(|(op, _)| op.callers.admits(caller.kind()))
            .map(|(_, tool)| tool.clone())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = caller_of(&context)?;
        let Some(op) = ops::find(&request.name) else {
            let message = format!("unknown tool `{}`; call tools/list for the tools", request.name);
            return Err(McpError::invalid_params(message, None));
        };
        let input = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let result = match op.call(Arc::clone(&self.ctx), caller, input).await {
            Ok(outcome) => CallToolResult::structured(outcome.body),
            Err(error) => {
                error.log();
                let envelope = serde_json::to_string(&error.envelope()).unwrap_or_default();
                CallToolResult::error(vec![ContentBlock::text(envelope)])
            }
        };
        Ok(result.into())
    }
}
