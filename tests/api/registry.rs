//! Tests that walk the whole registry, so every operation added later is covered by them too.

use std::collections::HashMap;

use kapable_comms::ops;
use kapable_comms::registry::Operation;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::on_both_databases;

/// The operation's path with each parameter replaced by the value `ids` gives it.
fn path_of(op: &Operation, ids: &HashMap<&str, String>) -> String {
    op.path_params().fold(op.path.to_owned(), |path, name| {
        let value = ids.get(name).cloned().unwrap_or_else(|| Uuid::now_v7().to_string());
        path.replace(&format!("{{{name}}}"), &value)
    })
}

fn method_of(op: &Operation) -> Method {
    Method::from_bytes(op.method.as_str().as_bytes()).unwrap()
}

async fn every_operation_that_needs_a_caller_answers_401_without_a_token(app: TestApp) {
    for op in ops::all().iter().filter(|op| !op.callers.is_public()) {
        let path = path_of(op, &HashMap::new());
        let (status, body) = app.call(method_of(op), &path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}: {body}", op.name);
        assert_eq!(body["error"]["code"], "unauthorized", "{}", op.name);
    }
    let (status, _) = app.mcp("", "tools/list", json!({})).await;
    assert_ne!(status, StatusCode::OK, "MCP without a token is refused");
    let response =
        app.http.post(format!("{}/v1/mcp", app.address)).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn every_operation_answers_404_for_another_orgs_ids(app: TestApp) {
    let other = app.other_org().await;
    let (_, key) = app
        .call(
            Method::POST,
            &format!("/v1/agents/{}/keys", other.agent_id),
            Some(&other.token),
            Some(json!({})),
        )
        .await;
    let (_, tokens) = app
        .call(
            Method::GET,
            &format!("/v1/orgs/{}/app-tokens", other.org_id),
            Some(&other.token),
            None,
        )
        .await;
    let ids: HashMap<&str, String> = HashMap::from([
        ("agent_id", other.agent_id.to_string()),
        ("org_id", other.org_id.to_string()),
        ("key_id", key["id"].as_str().unwrap().to_owned()),
        ("token_id", tokens["tokens"][0]["id"].as_str().unwrap().to_owned()),
    ]);

    let with_ids = ops::all().iter().filter(|op| op.path_params().next().is_some());
    for op in with_ids {
        let path = path_of(op, &ids);
        let (status, body) = app.call(method_of(op), &path, Some(&app.org.token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{} {path}: {body}", op.name);
        assert_eq!(body["error"]["code"], "not_found", "{}", op.name);

        let arguments: serde_json::Map<String, Value> = op
            .path_params()
            .map(|name| (name.to_owned(), Value::String(ids[name].clone())))
            .collect();
        let result = app.tool(&app.org.token, op.name, Value::Object(arguments)).await;
        assert_eq!(result["isError"], true, "{}: {result}", op.name);
        assert!(
            result["content"][0]["text"].as_str().unwrap().contains("not_found"),
            "{}: {result}",
            op.name
        );
    }

    let still_there = app.sdk(&other.token).comms().whoami().await;
    assert!(still_there.is_ok(), "nothing of the other org was changed");
}

async fn every_operation_names_an_unknown_field_over_rest_and_mcp(app: TestApp) {
    for op in ops::all() {
        let path = path_of(op, &HashMap::new());
        let (status, body) = match op.method {
            axum::http::Method::GET | axum::http::Method::DELETE => {
                app.call(method_of(op), &format!("{path}?bogus=1"), Some(&app.org.token), None)
                    .await
            }
            _ => {
                app.call(method_of(op), &path, Some(&app.org.token), Some(json!({ "bogus": 1 })))
                    .await
            }
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", op.name);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("`bogus`"), "{}: {message}", op.name);

        let mut arguments: serde_json::Map<String, Value> =
            op.path_params().map(|name| (name.to_owned(), json!(Uuid::now_v7()))).collect();
        arguments.insert("bogus".into(), json!(1));
        let result = app.tool(&app.org.token, op.name, Value::Object(arguments)).await;
        assert_eq!(result["isError"], true, "{}: {result}", op.name);
        let text = result["content"][0]["text"].as_str().unwrap();
        let error: Value = serde_json::from_str(text).unwrap();
        assert_eq!(error["error"]["code"], "invalid_request", "{}: {text}", op.name);
        assert!(text.contains("`bogus`"), "{}: {text}", op.name);
    }
}

async fn every_path_parameter_that_is_not_an_id_is_a_400_naming_it(app: TestApp) {
    for op in ops::all().iter().filter(|op| op.path_params().next().is_some()) {
        let ids: HashMap<&str, String> =
            op.path_params().map(|p| (p, "not-a-uuid".to_owned())).collect();
        let path = path_of(op, &ids);
        let (status, body) = app.call(method_of(op), &path, Some(&app.org.token), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", op.name);
        let first = op.path_params().next().unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains(first), "{}: {body}", op.name);
    }
}

on_both_databases!(
    every_operation_that_needs_a_caller_answers_401_without_a_token,
    every_operation_answers_404_for_another_orgs_ids,
    every_operation_names_an_unknown_field_over_rest_and_mcp,
    every_path_parameter_that_is_not_an_id_is_a_400_naming_it,
);
