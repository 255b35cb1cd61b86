//! A fake Telegram Bot API server for tests: the methods the bridge calls (`getMe`,
//! `getUpdates`, `sendMessage`, `setWebhook`, `deleteWebhook`), scripted updates, recorded
//! sends, and failures on demand (a 429 with `retry_after`, a 500).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The bot the fake impersonates.
pub const BOT_ID: i64 = 4242;
/// Its username.
pub const BOT_USERNAME: &str = "kapable_test_bot";

/// A message the bridge sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The chat.
    pub chat_id: i64,
    /// The forum topic.
    pub thread_id: Option<i64>,
    /// The text.
    pub text: String,
    /// When it arrived.
    pub at: Instant,
}

/// A failure the next `sendMessage` answers with.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// 429 Too Many Requests, retry after this many seconds.
    RetryAfter(u32),
    /// 500.
    ServerError,
}

#[derive(Default)]
struct Script {
    updates: Vec<Value>,
    next_update_id: i64,
    next_message_id: i64,
    sent: Vec<Sent>,
    failures: VecDeque<Failure>,
    refused: Vec<Instant>,
    polls_in_flight: u32,
    overlapping_polls: u32,
    calls: Vec<String>,
    webhook: Option<(String, String)>,
}

/// A running fake; it serves until the test's runtime ends.
#[derive(Clone)]
#[expect(missing_debug_implementations, reason = "holds only shared state")]
pub struct FakeBotApi {
    /// The base URL, for `TELEGRAM_API_URL`.
    pub url: String,
    script: Arc<Mutex<Script>>,
    arrived: Arc<Notify>,
}

impl FakeBotApi {
    /// Starts a fake on a free loopback port.
    pub async fn start() -> FakeBotApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let script = Script { next_update_id: 1, next_message_id: 1, ..Default::default() };
        let fake =
            FakeBotApi { url, script: Arc::new(Mutex::new(script)), arrived: Arc::default() };
        let app =
            axum::Router::new().route("/{bot}/{method}", post(answer)).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// Queues a text message from user `from` (id, first name, last name) in `chat_id`; its
    /// message id.
    pub fn user_says(&self, chat_id: i64, from: (i64, &str, &str), text: &str) -> i64 {
        self.queue(chat_id, None, from, text)
    }

    /// Like [`FakeBotApi::user_says`], in a forum topic.
    pub fn user_says_in_topic(
        &self,
        chat_id: i64,
        thread: i64,
        from: (i64, &str, &str),
        text: &str,
    ) -> i64 {
        self.queue(chat_id, Some(thread), from, text)
    }

    fn queue(&self, chat_id: i64, thread: Option<i64>, from: (i64, &str, &str), text: &str) -> i64 {
        let mut script = self.script.lock().expect("not poisoned");
        let (update_id, message_id) = (script.next_update_id, script.next_message_id);
        script.next_update_id += 1;
        script.next_message_id += 1;
        let mut message = user_message(message_id, chat_id, from, text);
        message["chat"]["is_forum"] = json!(thread.is_some());
        if let Some(thread) = thread {
            message["message_thread_id"] = json!(thread);
            message["is_topic_message"] = json!(true);
        }
        script.updates.push(json!({ "update_id": update_id, "message": message }));
        drop(script);
        self.arrived.notify_waiters();
        message_id
    }

    /// The update `queue` would make, for posting to a webhook directly.
    pub fn update_json(chat_id: i64, update_id: i64, from: (i64, &str, &str), text: &str) -> Value {
        json!({ "update_id": update_id, "message": user_message(update_id, chat_id, from, text) })
    }

    /// What the bridge sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.script.lock().expect("not poisoned").sent.clone()
    }

    /// Waits until the bridge has sent at least `count` messages.
    pub async fn wait_for_sent(&self, count: usize, within: Duration) -> Vec<Sent> {
        let deadline = Instant::now() + within;
        loop {
            let sent = self.sent();
            if sent.len() >= count || Instant::now() > deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Makes the next `sendMessage` calls fail, in order.
    pub fn fail_next_sends(&self, failures: &[Failure]) {
        self.script.lock().expect("not poisoned").failures.extend(failures);
    }

    /// When each refused `sendMessage` was answered.
    pub fn refused(&self) -> Vec<Instant> {
        self.script.lock().expect("not poisoned").refused.clone()
    }

    /// How many `getUpdates` began while another was still waiting: two pollers.
    pub fn overlapping_polls(&self) -> u32 {
        self.script.lock().expect("not poisoned").overlapping_polls
    }

    /// The methods called, in order, lower-cased.
    pub fn calls(&self) -> Vec<String> {
        self.script.lock().expect("not poisoned").calls.clone()
    }

    /// The webhook set, as (url, secret token).
    pub fn webhook(&self) -> Option<(String, String)> {
        self.script.lock().expect("not poisoned").webhook.clone()
    }
}

async fn answer(
    State(fake): State<FakeBotApi>,
    Path((_bot, method)): Path<(String, String)>,
    request: Request,
) -> (StatusCode, Json<Value>) {
    let params = params(request).await;
    let method = method.to_ascii_lowercase();
    fake.script.lock().expect("not poisoned").calls.push(method.clone());
    let ok = |result: Value| (StatusCode::OK, Json(json!({ "ok": true, "result": result })));
    match method.as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Kapable", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false,
        })),
        "getupdates" => ok(updates(&fake, &params).await),
        "sendmessage" => {
            let mut script = fake.script.lock().expect("not poisoned");
            if let Some(failure) = script.failures.pop_front() {
                script.refused.push(Instant::now());
                return match failure {
                    Failure::RetryAfter(seconds) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        Json(json!({
                            "ok": false, "error_code": 429,
                            "description": format!("Too Many Requests: retry after {seconds}"),
                            "parameters": { "retry_after": seconds },
                        })),
                    ),
                    Failure::ServerError => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Json(json!({
                            "ok": false, "error_code": 500, "description": "Internal Server Error",
                        })),
                    ),
                };
            }
            let chat_id = params["chat_id"].as_i64().unwrap_or_default();
            let text = params["text"].as_str().unwrap_or_default().to_owned();
            let thread_id = params["message_thread_id"].as_i64();
            script.sent.push(Sent { chat_id, thread_id, text: text.clone(), at: Instant::now() });
            let message_id = script.next_message_id;
            script.next_message_id += 1;
            ok(json!({
                "message_id": message_id, "date": 1_700_000_000,
                "chat": { "id": chat_id, "type": "supergroup", "title": "Ops" },
                "from": {
                    "id": BOT_ID, "is_bot": true, "first_name": "Kapable", "username": BOT_USERNAME,
                },
                "text": text,
            }))
        }
        "setwebhook" => {
            let url = params["url"].as_str().unwrap_or_default().to_owned();
            let secret = params["secret_token"].as_str().unwrap_or_default().to_owned();
            fake.script.lock().expect("not poisoned").webhook = Some((url, secret));
            ok(json!(true))
        }
        "deletewebhook" => {
            fake.script.lock().expect("not poisoned").webhook = None;
            ok(json!(true))
        }
        other => (
            StatusCode::NOT_FOUND,
            Json(json!({
                "ok": false, "error_code": 404, "description": format!("Not Found: {other}"),
            })),
        ),
    }
}

/// The call's parameters, sent as JSON or (as `setWebhook` is) as a multipart form.
async fn params(request: Request) -> Value {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        return match Json::<Value>::from_request(request, &()).await {
            Ok(Json(params)) => params,
            Err(_) => Value::Null,
        };
    }
    let mut params = serde_json::Map::new();
    let Ok(mut form) = Multipart::from_request(request, &()).await else {
        return Value::Null;
    };
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let text = field.text().await.unwrap_or_default();
        // Telegram's form fields are numbers, JSON (`allowed_updates`) or plain strings.
        let value = match text.parse::<i64>() {
            Ok(number) => Value::from(number),
            Err(_) if text.starts_with(['[', '{']) => {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
            Err(_) => Value::String(text),
        };
        params.insert(name, value);
    }
    Value::Object(params)
}

/// Updates from `offset` on, waiting up to the poll's `timeout` (at most 2 s here) for one.
async fn updates(fake: &FakeBotApi, params: &Value) -> Value {
    let offset = params["offset"].as_i64().unwrap_or(0);
    let wait = Duration::from_secs(params["timeout"].as_u64().unwrap_or(0).min(2));
    {
        let mut script = fake.script.lock().expect("not poisoned");
        if script.polls_in_flight > 0 {
            script.overlapping_polls += 1;
        }
        script.polls_in_flight += 1;
        script.updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
    }
    let deadline = tokio::time::Instant::now() + wait;
    let found = loop {
        let arrived = fake.arrived.notified();
        let pending = fake.script.lock().expect("not poisoned").updates.clone();
        if !pending.is_empty() || tokio::time::Instant::now() >= deadline {
            break pending;
        }
        let _ = tokio::time::timeout_at(deadline, arrived).await;
    };
    fake.script.lock().expect("not poisoned").polls_in_flight -= 1;
    Value::Array(found)
}

/// A text message from the user `from` (id, first and last name) in the group `chat_id`.
fn user_message(message_id: i64, chat_id: i64, from: (i64, &str, &str), text: &str) -> Value {
    json!({
        "message_id": message_id,
        "date": 1_700_000_000,
        "chat": { "id": chat_id, "type": "supergroup", "title": "Ops" },
        "from": { "id": from.0, "is_bot": false, "first_name": from.1, "last_name": from.2 },
        "text": text,
    })
}
