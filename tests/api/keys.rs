//! Agent keys and app tokens: shown once, listed without secrets, revoked at once.

use kapable_sdk::comms::types::{MintAgentKeyRequest, MintAppTokenRequest, PageQuery};
use reqwest::{Method, StatusCode};

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn a_minted_key_works_until_it_is_revoked(app: TestApp) {
    let client = app.sdk(&app.org.token);
    let minted = client
        .comms()
        .mint_agent_key(app.org.agent_id, MintAgentKeyRequest { label: "production".into() })
        .await
        .unwrap();
    assert!(minted.key.starts_with("ak_") && minted.key.len() >= 46, "{}", minted.key);
    assert!(minted.key.starts_with(&minted.prefix));

    let me = app.sdk(&minted.key).comms().whoami().await.unwrap();
    assert_eq!(me.agent_id, Some(app.org.agent_id));

    client.comms().revoke_agent_key(app.org.agent_id, minted.id).await.unwrap();
    let refused = app.sdk(&minted.key).comms().whoami().await.unwrap_err();
    assert_eq!(refused.status(), Some(401));
    assert_eq!(refused.code(), Some("unauthorized"));
    let (status, answer) = app.mcp(&minted.key, "tools/list", serde_json::json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "MCP refuses it too: {answer}");
}

async fn listed_keys_show_a_prefix_and_never_the_secret(app: TestApp) {
    let client = app.sdk(&app.org.token);
    let minted = client
        .comms()
        .mint_agent_key(app.org.agent_id, MintAgentKeyRequest { label: "ci".into() })
        .await
        .unwrap();
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/v1/agents/{}/keys", app.org.agent_id),
            Some(&app.org.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = body.to_string();
    assert!(!text.contains(&minted.key), "{text}");
    assert!(!text.contains(&app.org.agent_key), "{text}");
    let keys =
        client.comms().list_agent_keys(app.org.agent_id, PageQuery::default()).await.unwrap();
    assert_eq!(keys.keys.len(), 2);
    assert!(keys.keys.iter().any(|k| k.id == minted.id && k.label == "ci"));
}

async fn an_app_token_can_mint_list_and_revoke_app_tokens(app: TestApp) {
    let client = app.sdk(&app.org.token);
    let minted = client
        .comms()
        .mint_app_token(app.org.org_id, MintAppTokenRequest { label: "dashboard".into() })
        .await
        .unwrap();
    assert!(minted.token.starts_with("kap_"));
    let second = app.sdk(&minted.token);
    assert_eq!(second.comms().whoami().await.unwrap().org_id, app.org.org_id);

    let tokens =
        client.comms().list_app_tokens(app.org.org_id, PageQuery::default()).await.unwrap();
    assert_eq!(tokens.tokens.len(), 2);
    assert!(!serde_json::to_string(&tokens).unwrap().contains(&minted.token));

    second.comms().revoke_app_token(app.org.org_id, minted.id).await.unwrap();
    assert_eq!(second.comms().whoami().await.unwrap_err().status(), Some(401));
    client.comms().whoami().await.expect("the first token still works");
}

async fn malformed_and_unknown_tokens_are_refused_with_401(app: TestApp) {
    let unknown = format!("ak_{}", "A".repeat(43));
    for token in ["nonsense", "ak_short", unknown.as_str()] {
        let (status, body) = app.call(Method::GET, "/v1/me", Some(token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(!body.to_string().contains(token) || token == "nonsense", "{body}");
    }
}

async fn last_used_is_recorded_for_a_key(app: TestApp) {
    let client = app.sdk(&app.org.agent_key);
    client.comms().whoami().await.unwrap();
    // The write happens off the request path; poll until it lands.
    let org = app.sdk(&app.org.token);
    for _ in 0..100 {
        let keys =
            org.comms().list_agent_keys(app.org.agent_id, PageQuery::default()).await.unwrap();
        if keys.keys[0].last_used_at.is_some() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("last_used_at was never recorded");
}

on_both_databases!(
    a_minted_key_works_until_it_is_revoked,
    listed_keys_show_a_prefix_and_never_the_secret,
    an_app_token_can_mint_list_and_revoke_app_tokens,
    malformed_and_unknown_tokens_are_refused_with_401,
    last_used_is_recorded_for_a_key,
);
