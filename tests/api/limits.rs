//! Every limit the README lists is answered with its status and error code: sizes of bodies,
//! URLs, lists, messages and mail; slow clients; failed authentication per client address.
//! (Request heads: `registry.rs`; open streams per token: `fanout.rs`.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::on_both_databases;

/// How long a test waits for the gateway to close a slow connection before calling it a hang.
const HANG: Duration = Duration::from_secs(30);

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty(), "{body}");
}

async fn a_body_over_the_limit_is_413(app: TestApp) {
    let app = app.restart(|settings| settings.max_body_bytes = 4096).await;
    let body = json!({ "name": "big", "description": "x".repeat(4096) });
    let (status, answer) =
        app.call(Method::POST, "/v1/rooms", Some(&app.org.token), Some(body)).await;
    assert_error(status, &answer, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let body = json!({ "name": "small" });
    let (status, answer) =
        app.call(Method::POST, "/v1/rooms", Some(&app.org.token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

async fn a_url_over_4_kib_is_414(app: TestApp) {
    let limit = kapable_comms::http::guard::MAX_URL_BYTES;
    let path = format!("/v1/rooms?cursor={}", "a".repeat(limit));
    let (status, answer) = app.call(Method::GET, &path, Some(&app.org.token), None).await;
    assert_error(status, &answer, StatusCode::URI_TOO_LONG, "uri_too_long");
}

async fn a_list_limit_outside_1_to_200_is_400(app: TestApp) {
    for limit in ["0", "201", "-1", "many"] {
        let path = format!("/v1/rooms?limit={limit}");
        let (status, answer) = app.call(Method::GET, &path, Some(&app.org.token), None).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(answer["error"]["message"].as_str().unwrap().contains("limit"), "{answer}");
    }
    let (status, answer) =
        app.call(Method::GET, "/v1/rooms?limit=200", Some(&app.org.token), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn a_message_body_over_32_kib_is_400(app: TestApp) {
    let room = app.room("sizes").await;
    let path = format!("/v1/rooms/{}/messages", room.id);
    let most = 32 * 1024; // as the README promises
    let token = Some(app.org.token.as_str());
    let body = json!({ "body": "é".repeat(most / 2) });
    let (status, answer) = app.call(Method::POST, &path, token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "exactly the limit is accepted: {answer}");
    let body = json!({ "body": format!("{}x", "é".repeat(most / 2)) });
    let (status, answer) = app.call(Method::POST, &path, token, Some(body)).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
}

async fn a_send_over_its_recipients_or_body_size_is_400(app: TestApp) {
    let app = app.restart(|settings| settings.max_body_bytes = 4 * 1024 * 1024).await;
    let address = format!("limits-{}@agents.example.com", Uuid::now_v7().simple());
    let body = json!({ "agent_id": app.org.agent_id, "address": address });
    let token = Some(app.org.token.as_str());
    let (_, mailbox) = app.call(Method::POST, "/v1/mailboxes", token, Some(body)).await;
    let path = format!("/v1/mailboxes/{}/send", mailbox["id"].as_str().unwrap());
    let send = |to: String, body_text: String| json!({ "to": to, "subject": "limits", "body_text": body_text });

    let many: Vec<String> = (0..51).map(|i| format!("r{i}@example.com")).collect();
    let (status, answer) =
        app.call(Method::POST, &path, token, Some(send(many.join(", "), "hi".into()))).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(answer["error"]["message"].as_str().unwrap().contains("50"), "{answer}");

    let big = "x".repeat(kapable_comms::mail::compose::MAX_BODY_BYTES + 1);
    let (status, answer) =
        app.call(Method::POST, &path, token, Some(send("a@example.com".into(), big))).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_request");

    let (status, answer) =
        app.call(Method::POST, &path, token, Some(send(many[..50].join(", "), "hi".into()))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "50 recipients are accepted: {answer}");
}

/// Writes `fast` at once, then `slow` a byte a second for as long as the gateway reads, and
/// returns what the gateway answered before it closed the connection.
async fn slowly(app: &TestApp, fast: String, slow: String) -> String {
    let stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(fast.as_bytes()).await.unwrap();
    let sending = tokio::spawn(async move {
        for byte in slow.as_bytes() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(HANG, reader.read_to_end(&mut answer)).await;
    sending.abort();
    assert!(read.is_ok(), "the gateway kept a slow connection open");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn a_client_that_sends_its_head_a_byte_a_second_is_closed(app: TestApp) {
    let app = app.restart(|settings| settings.limits.header_timeout_secs = 2).await;
    let head = format!(
        "GET /v1/me HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\r\n",
        app.org.token
    );
    let answer = slowly(&app, String::new(), head).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    let (status, _) = app.call(Method::GET, "/v1/me", Some(&app.org.token), None).await;
    assert_eq!(status, StatusCode::OK, "others are served");
}

async fn a_client_that_sends_its_body_a_byte_a_second_is_answered_408(app: TestApp) {
    let app = app.restart(|settings| settings.limits.body_timeout_secs = 2).await;
    let body = json!({ "name": "slowly", "description": "x".repeat(64) }).to_string();
    let head = format!(
        "POST /v1/rooms HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        app.org.token,
        body.len()
    );
    let answer = slowly(&app, head, body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    let (status, rooms) = app.call(Method::GET, "/v1/rooms", Some(&app.org.token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!rooms.to_string().contains("slowly"), "the slow request did nothing: {rooms}");
}

async fn failed_authentication_is_throttled_per_client_address(app: TestApp) {
    let app = app
        .restart(|settings| {
            settings.limits.auth_failures_per_minute = 3;
            settings.limits.client_ip_header = Some("x-forwarded-for".into());
        })
        .await;
    let me = format!("{}/v1/me", app.address);
    let get = |client: &str, token: &str| {
        app.http
            .get(&me)
            .bearer_auth(token)
            .header("x-forwarded-for", format!("10.9.9.9, {client}"))
    };

    // Asking without a token is no guess at one: it does not count.
    for _ in 0..5 {
        let answer = app.http.get(&me).header("x-forwarded-for", "10.0.0.1").send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    let wrong = format!("kap_{}", "0".repeat(43));
    for _ in 0..3 {
        let answer = get("10.0.0.1", &wrong).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    // Past the limit even the right token is refused from that address, so a guess that
    // happens to be right is not confirmed; another address is served.
    let refused = get("10.0.0.1", &app.org.token).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");

    let served = get("10.0.0.2", &app.org.token).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let without = app.http.get(&me).header("x-forwarded-for", "10.0.0.1").send().await.unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED, "no token is still a plain 401");

    // MCP with a token in its path counts the same way.
    let mcp = format!("{}/v1/mcp/{wrong}", app.address);
    let answer = app
        .http
        .post(&mcp)
        .header("x-forwarded-for", "10.0.0.2")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

async fn without_a_proxy_header_the_connections_peer_is_the_client(app: TestApp) {
    let app = app.restart(|settings| settings.limits.auth_failures_per_minute = 2).await;
    let me = format!("{}/v1/me", app.address);
    let wrong = format!("ak_{}", "1".repeat(43));
    for _ in 0..2 {
        let answer = app.http.get(&me).bearer_auth(&wrong).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    // A forwarded address is not believed unless the operator names the header.
    let refused =
        app.http.get(&me).bearer_auth(&app.org.token).header("x-forwarded-for", "10.0.0.3");
    assert_eq!(refused.send().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

on_both_databases!(
    without_a_proxy_header_the_connections_peer_is_the_client,
    a_body_over_the_limit_is_413,
    a_url_over_4_kib_is_414,
    a_list_limit_outside_1_to_200_is_400,
    a_message_body_over_32_kib_is_400,
    a_send_over_its_recipients_or_body_size_is_400,
    a_client_that_sends_its_head_a_byte_a_second_is_closed,
    a_client_that_sends_its_body_a_byte_a_second_is_answered_408,
    failed_authentication_is_throttled_per_client_address,
);
