//! No secret anywhere it should not be: a scenario that touches every kind of secret runs
//! against the binary at `RUST_LOG=trace`; then neither its log nor its database holds any of
//! them, nor an email body or address. The database holds each token's SHA-256 instead.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Duration;

use kapable_tools::smtp::SmtpServer;
use kapable_tools::telegram::FakeBotApi;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Column, Row, ValueRef};
use uuid::Uuid;

use crate::cli::{database_url, start_with};

/// The scenario's calls, all as JSON over HTTP.
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn tool(&self, key: &str, name: &str, arguments: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": name, "arguments": arguments } });
        let answer: Value = self
            .http
            .post(format!("{}/v1/mcp/{key}", self.base))
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["result"]["isError"], false, "{name}: {answer}");
        answer["result"]["structuredContent"].clone()
    }
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_else(|| panic!("no `{field}` in {value}")).to_owned()
}

#[tokio::test]
async fn no_secret_reaches_the_log_or_the_database_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(&dir);
    let smtp = SmtpServer::start(&[]).await;
    let bot = FakeBotApi::start().await;
    let bot_token = format!("123456:{}", Uuid::now_v7().simple());
    let running = start_with(
        &url,
        &[
            ("RUST_LOG", "trace"),
            ("SMTP_URL", &smtp.url),
            ("TELEGRAM_BOT_TOKEN", &bot_token),
            ("TELEGRAM_API_URL", &bot.url),
            ("TELEGRAM_POLL_TIMEOUT_SECS", "1"),
        ],
    );
    let client =
        Client { http: reqwest::Client::new(), base: format!("http://{}", running.address) };

    let mut child = running.child;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("claude mcp add") {
        stdout.read_line(&mut printed).unwrap();
    }
    let word = |prefix: &str| {
        printed.split_whitespace().find(|w| w.starts_with(prefix)).unwrap().to_owned()
    };
    let (token, key) = (word("kap_"), word("ak_"));
    // Secrets, and what a secret's database row must hold instead (its SHA-256).
    let mut secrets = vec![token.clone(), key.clone(), bot_token.clone()];
    let mut hashed = vec![token.clone(), key.clone()];

    let me = client.call("GET", "/v1/me", &token, None).await;
    let org_id = text(&me, "org_id");
    let minted = client
        .call(
            "POST",
            &format!("/v1/orgs/{org_id}/app-tokens"),
            &token,
            Some(json!({ "label": "ci" })),
        )
        .await;
    let agent = client.call("POST", "/v1/agents", &token, Some(json!({ "name": "helper" }))).await;
    let agent_id = text(&agent, "id");
    let path = format!("/v1/agents/{agent_id}/keys");
    let minted_key = client.call("POST", &path, &token, Some(json!({ "label": "x" }))).await;
    // A secret in an MCP result: the log must not repeat what a tool answers.
    let mcp_ticket = client.tool(&key, "create_stream_ticket", json!({})).await;

    let room = client.call("POST", "/v1/rooms", &token, Some(json!({ "name": "private" }))).await;
    let room_id = text(&room["room"], "id");
    let invite =
        client.call("POST", &format!("/v1/rooms/{room_id}/invites"), &token, Some(json!({}))).await;
    let invite_token = text(&invite, "token");
    let joined = client
        .call(
            "POST",
            &format!("/v1/rooms/join/{invite_token}"),
            "",
            Some(json!({ "display_name": "Guest" })),
        )
        .await;
    let participant = text(&joined, "participant_token");
    let ticket = client.call("POST", "/v1/stream-tickets", &participant, Some(json!({}))).await;
    let ticket = text(&ticket, "ticket");
    let stream = client
        .http
        .get(format!("{}/v1/rooms/{room_id}/stream?ticket={ticket}", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    drop(stream);

    let marker = Uuid::now_v7().simple().to_string();
    let address = format!("box-{marker}@agents.example.com");
    let mailbox = client
        .call(
            "POST",
            "/v1/mailboxes",
            &token,
            Some(json!({ "agent_id": agent_id, "address": address })),
        )
        .await;
    let mailbox_id = text(&mailbox, "id");
    let channel = client
        .call(
            "POST",
            "/v1/channels",
            &token,
            Some(json!({ "mailbox_id": mailbox_id, "kind": "email" })),
        )
        .await;
    let channel_secret = text(&channel, "secret");
    let hook =
        json!({ "mailbox_id": mailbox_id, "kind": "webhook", "url": "http://127.0.0.1:9/hook" });
    let hook = client.call("POST", "/v1/channels", &token, Some(hook)).await;
    // The one secret the database keeps in the clear: the gateway signs webhooks with it.
    let signing_secret = text(&hook, "secret");
    secrets.push(signing_secret.clone());
    let sender = format!("sender-{marker}@example.org");
    let inbound_body = format!("inbound words {marker}");
    let raw = format!(
        "From: {sender}\r\nTo: {address}\r\nSubject: hello\r\nMessage-ID: <{marker}@example.org>\r\n\r\n{inbound_body}\r\n"
    );
    let delivered = client
        .http
        .post(format!("{}/v1/channels/{}/inbound", client.base, text(&channel, "id")))
        .bearer_auth(&channel_secret)
        .header("content-type", "message/rfc822")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert!(delivered.status().is_success(), "{}", delivered.text().await.unwrap());

    let recipient = format!("recipient-{marker}@example.net");
    let outbound_body = format!("outbound words {marker}");
    let send = json!({ "to": recipient, "subject": "reply", "body_text": outbound_body });
    client.call("POST", &format!("/v1/mailboxes/{mailbox_id}/send"), &token, Some(send)).await;
    let received = smtp.wait_for(1, Duration::from_secs(30)).await;
    assert!(received[0].data.contains(&outbound_body), "the mail went out");

    let wrong = format!("{key}x");
    let refused =
        client.http.get(format!("{}/v1/me", client.base)).bearer_auth(&wrong).send().await;
    assert_eq!(refused.unwrap().status(), StatusCode::UNAUTHORIZED);

    let minted = [text(&minted, "token"), text(&minted_key, "key"), text(&mcp_ticket, "ticket")];
    for value in minted.into_iter().chain([invite_token, participant, ticket, channel_secret]) {
        secrets.push(value.clone());
        hashed.push(value);
    }
    let words = [address, sender, recipient, inbound_body, outbound_body];

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    child.wait().unwrap();
    let log = running.log.lock().unwrap().clone();
    assert!(log.contains("TRACE"), "the log is at trace level");
    assert!(log.contains("/v1/mcp/{token}"), "the MCP route is logged by its template");
    let leaks: Vec<&str> = log
        .lines()
        .filter(|line| {
            secrets.iter().any(|secret| line.contains(&secret[secret.len() - 20..]))
                || words.iter().any(|word| line.contains(word.as_str()))
        })
        .collect();
    assert!(leaks.is_empty(), "secrets or mail reached the log:\n{}", leaks.join("\n"));

    let (texts, blobs) = database_contents(&url).await;
    for secret in secrets.iter().filter(|&s| s != &signing_secret) {
        assert!(!texts.iter().any(|t| t.contains(secret.as_str())), "the database holds {secret}");
    }
    for secret in &hashed {
        let hash = Sha256::digest(secret.as_bytes()).to_vec();
        assert!(blobs.contains(&hash), "the database holds no hash of {secret}");
    }
}

/// Every text and every blob in every table of the SQLite database at `url`.
async fn database_contents(url: &str) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let (mut texts, mut blobs) = (Vec::new(), Vec::new());
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
            .fetch_all(&mut db)
            .await
            .unwrap();
        for row in rows {
            for column in row.columns() {
                let raw = row.try_get_raw(column.ordinal()).unwrap();
                if raw.is_null() {
                    continue;
                }
                if let Ok(value) = row.try_get::<String, _>(column.ordinal()) {
                    texts.push(value);
                } else if let Ok(value) = row.try_get::<Vec<u8>, _>(column.ordinal()) {
                    texts.push(String::from_utf8_lossy(&value).into_owned());
                    blobs.push(value);
                }
            }
        }
    }
    (texts, blobs)
}
