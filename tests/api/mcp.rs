//! MCP over Streamable HTTP, stateless: tools per caller kind, structured results, errors as
//! `isError` results.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;

fn tool_names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn an_agent_key_sees_only_the_tools_an_agent_may_call(app: TestApp) {
    let (status, agent) = app.mcp(&app.org.agent_key, "tools/list", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{agent}");
    let (_, org) = app.mcp(&app.org.token, "tools/list", json!({})).await;
    let agent_tools = tool_names(&agent);
    let org_tools = tool_names(&org);
    assert!(agent_tools.contains(&"whoami".to_owned()));
    assert!(!agent_tools.contains(&"create_agent".to_owned()), "{agent_tools:?}");
    let for_org: Vec<&str> = kapable_comms::ops::all()
        .iter()
        .filter(|op| op.callers.admits(Some(kapable_sdk::comms::types::CallerKind::Org)))
        .map(|op| op.name)
        .collect();
    assert_eq!(org_tools, for_org);
}

async fn every_tool_declares_object_schemas_for_input_and_output(app: TestApp) {
    let (_, org) = app.mcp(&app.org.token, "tools/list", json!({})).await;
    for tool in org["result"]["tools"].as_array().unwrap() {
        let name = &tool["name"];
        assert_eq!(tool["inputSchema"]["type"], "object", "{name}");
        assert_eq!(tool["outputSchema"]["type"], "object", "{name}");
        assert!(!tool["description"].as_str().unwrap().is_empty(), "{name}");
        let output = tool["outputSchema"].to_string();
        assert!(!output.contains("uint64"), "{name}: u64 fields upset some clients");
    }
}

async fn a_tool_call_returns_structured_content(app: TestApp) {
    let result = app.tool(&app.org.agent_key, "whoami", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["kind"], "agent");
    assert_eq!(result["structuredContent"]["agent_id"], json!(app.org.agent_id));
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);
}

async fn a_failed_call_is_an_error_result_with_the_api_code(app: TestApp) {
    let result = app.tool(&app.org.token, "create_agent", json!({ "name": "" })).await;
    assert_eq!(result["isError"], true, "{result}");
    let error: Value =
        serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "invalid_request");
    assert!(error["error"]["message"].as_str().unwrap().contains("name"));

    let forbidden = app.tool(&app.org.agent_key, "create_agent", json!({ "name": "x" })).await;
    assert_eq!(forbidden["isError"], true);
    assert!(forbidden["content"][0]["text"].as_str().unwrap().contains("forbidden"));
}

async fn an_unknown_tool_is_a_protocol_error(app: TestApp) {
    let (status, answer) = app
        .mcp(&app.org.token, "tools/call", json!({ "name": "launch_rockets", "arguments": {} }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(answer["error"]["message"].as_str().unwrap().contains("launch_rockets"), "{answer}");
}

async fn the_token_may_come_from_the_authorization_header(app: TestApp) {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} });
    let response = app
        .http
        .post(format!("{}/v1/mcp", app.address))
        .bearer_auth(&app.org.agent_key)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert!(tool_names(&answer).contains(&"whoami".to_owned()));
}

async fn the_server_is_stateless_so_get_and_delete_are_405(app: TestApp) {
    let url = format!("{}/v1/mcp/{}", app.address, app.org.agent_key);
    let get = app.http.get(&url).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let delete = app.http.delete(&url).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
}

async fn a_foreign_host_header_is_refused(app: TestApp) {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} });
    let response = app
        .http
        .post(format!("{}/v1/mcp/{}", app.address, app.org.agent_key))
        .header("host", "evil.example.com")
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

on_both_databases!(
    an_agent_key_sees_only_the_tools_an_agent_may_call,
    every_tool_declares_object_schemas_for_input_and_output,
    a_tool_call_returns_structured_content,
    a_failed_call_is_an_error_result_with_the_api_code,
    an_unknown_tool_is_a_protocol_error,
    the_token_may_come_from_the_authorization_header,
    the_server_is_stateless_so_get_and_delete_are_405,
    a_foreign_host_header_is_refused,
);
