//! GET /openapi.json: an OpenAPI 3.1 document generated from the registry.
//!
//! Each operation's input schema is split into its path parameters, its query parameters (for
//! GET and DELETE) or its JSON body (for POST and PUT); its output schema is the success
//! response. Shared types live under `#/components/schemas`. The document is built once.
//!
//! An operation that creates an object links to the operations on that object, the routes
//! below its own path: their next path parameter is the created object's field of that name, or
//! its `id`, so that a client following links never takes one id for another.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use axum::{Json, response::IntoResponse};
use kapable_sdk::ErrorEnvelope;
use schemars::SchemaGenerator;
use serde_json::{Map, Value, json};

use crate::ops;
use crate::registry::{Operation, schema};
use crate::state::Ctx;

const DEFINITIONS: &str = "#/components/schemas/";

pub(super) fn routes() -> Router<Ctx> {
    Router::new().route("/openapi.json", get(serve))
}

async fn serve() -> impl IntoResponse {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(document);
    Json(&*DOCUMENT)
}

/// The whole document.
pub fn document() -> Value {
    let mut inputs = schema::generator(false, DEFINITIONS);
    let mut outputs = schema::generator(true, DEFINITIONS);
    let mut paths = Map::new();
    for op in ops::all() {
        let item = paths.entry(op.path).or_insert_with(|| json!({}));
        let method = op.method.as_str().to_ascii_lowercase();
        item[method] = operation(op, &mut inputs, &mut outputs);
    }
    for op in ops::all() {
        add_links(op, &mut paths);
    }

    // Registers `ErrorEnvelope` and the types it uses among the definitions.
    outputs.subschema_for::<ErrorEnvelope>();
    let mut schemas = inputs.take_definitions(true);
    schemas.extend(outputs.take_definitions(true));

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kapable-comms",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Agent communication gateway. Every operation is also an MCP tool \
                of the same name at /v1/mcp/{token}. Errors share one envelope: \
                {\"error\": {\"code\", \"message\", \"details\"}}.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer",
                    "description": "An org app token (kap_...) or an agent key (ak_...)." },
            },
        },
        "security": [{ "bearer": [] }],
    })
}

fn operation(op: &Operation, inputs: &mut SchemaGenerator, outputs: &mut SchemaGenerator) -> Value {
    let input = inline((op.input)(inputs));
    let properties =
        input.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let required: Vec<&str> = input
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    let path_params: Vec<&str> = op.path_params().collect();
    let mut parameters: Vec<Value> =
        path_params.iter().map(|name| parameter(name, "path", &properties, true)).collect();
    let mut body = Map::new();
    for (name, property) in &properties {
        if path_params.contains(&name.as_str()) {
            continue;
        }
        if matches!(op.method, Method::GET | Method::DELETE) {
            parameters.push(parameter(
                name,
                "query",
                &properties,
                required.contains(&name.as_str()),
            ));
        } else {
            body.insert(name.clone(), property.clone());
        }
    }

    let mut operation = json!({
        "operationId": op.name,
        "summary": summary(op.description),
        "description": op.description,
        "parameters": parameters,
        "responses": responses(op, &inline((op.output)(outputs))),
    });
    if matches!(op.method, Method::POST | Method::PUT) {
        let body_required: Vec<&str> =
            required.iter().copied().filter(|r| !path_params.contains(r)).collect();
        let mut schema = json!({
            "type": "object",
            "properties": body,
            "required": body_required,
            "additionalProperties": false,
        });
        // Rules between fields (one of two fields required, one allowed only with a kind).
        for rule in ["anyOf", "oneOf", "allOf"] {
            if let Some(branches) = input.get(rule) {
                schema[rule] = branches.clone();
            }
        }
        operation["requestBody"] = json!({
            "required": !body_required.is_empty(),
            "content": { "application/json": { "schema": schema } },
        });
    }
    if op.callers.is_public() {
        operation["security"] = json!([]);
    }
    operation
}

/// Links from the success responses of a creating operation to the operations below its path.
fn add_links(op: &Operation, paths: &mut Map<String, Value>) {
    if op.success != StatusCode::CREATED {
        return;
    }
    let method = op.method.as_str().to_ascii_lowercase();
    let responses = &paths[op.path][&method]["responses"];
    let fields = responses["201"]["content"]["application/json"]["schema"]["properties"].clone();
    let mut links = Map::new();
    for target in ops::all() {
        let Some(rest) = target.path.strip_prefix(op.path).and_then(|r| r.strip_prefix("/{"))
        else {
            continue;
        };
        let Some((name, _)) = rest.split_once('}') else { continue };
        let field = if fields.get(name).is_some() { name } else { "id" };
        if fields.get(field).is_none() {
            continue;
        }
        let mut parameters: Map<String, Value> =
            op.path_params().map(|p| (p.to_owned(), json!(format!("$request.path.{p}")))).collect();
        parameters.insert(name.to_owned(), json!(format!("$response.body#/{field}")));
        links.insert(
            target.name.to_owned(),
            json!({ "operationId": target.name, "parameters": parameters }),
        );
    }
    if links.is_empty() {
        return;
    }
    let responses = &mut paths[op.path][&method]["responses"];
    for status in ["200", "201"] {
        responses[status]["links"] = Value::Object(links.clone());
    }
}

fn parameter(name: &str, location: &str, properties: &Map<String, Value>, required: bool) -> Value {
    let mut schema = properties.get(name).cloned().unwrap_or_else(|| json!({ "type": "string" }));
    let description = schema.as_object_mut().and_then(|s| s.remove("description"));
    json!({
        "name": name,
        "in": location,
        "required": required,
        "description": description.unwrap_or_default(),
        "schema": schema,
    })
}

fn responses(op: &Operation, output: &Value) -> Value {
    let mut responses = Map::new();
    let success = if op.success == StatusCode::NO_CONTENT {
        json!({ "description": "Done; no body." })
    } else {
        json!({
            "description": "Success.",
            "content": { "application/json": { "schema": output } },
        })
    };
    responses.insert(op.success.as_u16().to_string(), success);
    if op.success == StatusCode::CREATED {
        // Upserts answer 200 when the row already existed.
        responses.insert("200".into(), responses["201"].clone());
    }
    let mut errors: Vec<(u16, &str)> = vec![
        (400, "invalid_request: the input is wrong; the message names the field."),
        (401, "unauthorized: no token, or a malformed, unknown or revoked one."),
        (403, "forbidden: this kind of token may not call this operation."),
        (404, "not_found: no such object in the caller's org."),
        (408, "request_timeout: the body did not arrive in time; the connection is closed."),
        (413, "payload_too_large: the body is over the size limit."),
        (414, "uri_too_long: the URL is over 4 KiB."),
        (415, "unsupported_media_type: the body is not JSON."),
        (429, "rate_limited: this address presented too many refused tokens; see Retry-After."),
        (500, "internal: the gateway failed; the cause is logged."),
        (503, "unavailable: the database does not answer; retry shortly."),
    ];
    errors.extend(op.errors.iter().map(|(status, code)| (status.as_u16(), *code)));
    for (status, description) in errors {
        responses.insert(
            status.to_string(),
            json!({
                "description": description,
                "content": { "application/json": {
                    "schema": { "$ref": format!("{DEFINITIONS}ErrorEnvelope") } } },
            }),
        );
    }
    Value::Object(responses)
}

/// A root schema with the bookkeeping of its generator removed.
fn inline(schema: schemars::Schema) -> Value {
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        object.remove("components");
        object.remove("title");
    }
    value
}

/// The first sentence of a description.
fn summary(description: &str) -> &str {
    description.split_once(". ").map_or(description, |(first, _)| first)
}
