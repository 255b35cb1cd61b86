//! The OpenAPI document and the health routes.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn the_openapi_document_lists_every_operation(app: TestApp) {
    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for op in kapable_comms::ops::all() {
        let method = op.method.as_str().to_ascii_lowercase();
        let entry = &doc["paths"][op.path][&method];
        assert_eq!(entry["operationId"], op.name, "{} {}", op.method, op.path);
        for param in op.path_params() {
            let listed = entry["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == param && p["in"] == "path");
            assert!(listed, "{}: path parameter {param}", op.name);
        }
        let success = op.success.as_u16().to_string();
        assert!(entry["responses"][&success].is_object(), "{}", op.name);
    }
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
    assert!(!doc.to_string().contains("#/$defs/"), "every reference resolves in the document");
}

async fn every_reference_in_the_document_resolves(app: TestApp) {
    let (_, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling {reference}");
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                refs.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

async fn health_needs_no_token_and_readiness_reports_the_database(app: TestApp) {
    let (status, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, ready) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ready["database"] == "sqlite" || ready["database"] == "postgres", "{ready}");
}

async fn unknown_routes_and_methods_answer_the_error_envelope(app: TestApp) {
    let (status, body) = app.call(Method::GET, "/v1/nowhere", Some(&app.org.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = app.call(Method::PATCH, "/v1/agents", Some(&app.org.token), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

on_both_databases!(
    the_openapi_document_lists_every_operation,
    every_reference_in_the_document_resolves,
    health_needs_no_token_and_readiness_reports_the_database,
    unknown_routes_and_methods_answer_the_error_envelope,
);
