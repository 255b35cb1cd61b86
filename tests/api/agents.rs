//! Agents over REST and the SDK: upsert by name, paging, soft delete.

use kapable_sdk::comms::types::{CreateAgentRequest, ListAgentsQuery};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn creating_an_agent_twice_updates_the_same_agent(app: TestApp) {
    let token = Some(app.org.token.as_str());
    let first = json!({ "name": "support-bot", "description": "v1", "metadata": { "tier": 1 } });
    let (status, created) = app.call(Method::POST, "/v1/agents", token, Some(first)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let second = json!({ "name": "support-bot", "description": "v2" });
    let (status, updated) = app.call(Method::POST, "/v1/agents", token, Some(second)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["description"], "v2");
    assert_eq!(updated["metadata"], json!({ "tier": 1 }), "metadata left out is kept");
}

async fn the_sdk_creates_and_lists_agents_as_the_seed_examples_do(app: TestApp) {
    let client = app.sdk(&app.org.token);
    let agent = client
        .comms()
        .create_agent(CreateAgentRequest {
            name: "support-bot".into(),
            description: Some("Customer support automation".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let agents = client.comms().list_agents().await.unwrap();
    assert!(agents.agents.iter().any(|a| a.id == agent.id && a.name == "support-bot"));
    assert_eq!(agent.org_id, app.org.org_id);
}

async fn listing_agents_pages_through_every_agent_once(app: TestApp) {
    let client = app.sdk(&app.org.token);
    for i in 0..7 {
        let request = CreateAgentRequest { name: format!("bot-{i}"), ..Default::default() };
        client.comms().create_agent(request).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let query = ListAgentsQuery { limit: Some(3), cursor };
        let page = client.comms().list_agents_page(query).await.unwrap();
        assert!(page.agents.len() <= 3);
        seen.extend(page.agents.into_iter().map(|a| a.name));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mut expected: Vec<String> = (0..7).map(|i| format!("bot-{i}")).collect();
    expected.insert(0, "agent".into());
    assert_eq!(seen, expected);
}

async fn a_limit_out_of_range_is_refused_not_clamped(app: TestApp) {
    let token = Some(app.org.token.as_str());
    for limit in ["0", "201", "-1", "ten"] {
        let (status, body) =
            app.call(Method::GET, &format!("/v1/agents?limit={limit}"), token, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={limit}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("limit"), "{body}");
    }
}

async fn a_deleted_agent_is_hidden_and_its_key_stops_working_at_once(app: TestApp) {
    let token = Some(app.org.token.as_str());
    let key = Some(app.org.agent_key.as_str());
    let (status, _) = app.call(Method::GET, "/v1/me", key, None).await;
    assert_eq!(status, StatusCode::OK);

    let path = format!("/v1/agents/{}", app.org.agent_id);
    let (status, body) = app.call(Method::DELETE, &path, token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, body) = app.call(Method::GET, "/v1/me", key, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (_, list) = app.call(Method::GET, "/v1/agents", token, None).await;
    assert!(list["agents"].as_array().unwrap().is_empty(), "{list}");
    let (status, _) = app.call(Method::DELETE, &path, token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, again) =
        app.call(Method::POST, "/v1/agents", token, Some(json!({ "name": "agent" }))).await;
    assert_eq!(status, StatusCode::CREATED, "the name is free again: {again}");
}

async fn names_and_metadata_are_validated_with_the_field_named(app: TestApp) {
    let token = Some(app.org.token.as_str());
    let cases = [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "x".repeat(101) }), "name"),
        (json!({ "name": "ok", "metadata": [1, 2] }), "metadata"),
        (json!({ "description": "no name" }), "name"),
        (json!({ "name": 5 }), "name"),
    ];
    for (body, field) in cases {
        let (status, answer) =
            app.call(Method::POST, "/v1/agents", token, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
}

async fn an_agent_key_may_not_manage_agents(app: TestApp) {
    let key = Some(app.org.agent_key.as_str());
    let (status, body) =
        app.call(Method::POST, "/v1/agents", key, Some(json!({ "name": "x" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
}

on_both_databases!(
    creating_an_agent_twice_updates_the_same_agent,
    the_sdk_creates_and_lists_agents_as_the_seed_examples_do,
    listing_agents_pages_through_every_agent_once,
    a_limit_out_of_range_is_refused_not_clamped,
    a_deleted_agent_is_hidden_and_its_key_stops_working_at_once,
    names_and_metadata_are_validated_with_the_field_named,
    an_agent_key_may_not_manage_agents,
);
