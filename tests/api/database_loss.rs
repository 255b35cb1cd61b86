//! Database loss: the gateway reaches Postgres through a proxy the test controls, which cuts
//! every connection (and refuses new ones) under load, then restores them. While it is cut,
//! requests answer 503 `unavailable` promptly and `/readyz` says not ready; once restored the
//! gateway recovers by itself: nothing acknowledged is lost, a stream that reconnected while
//! the database was away resumes without a gap, the outbox delivers what it accepted and the
//! Telegram relay catches up, both ways.
//!
//! Postgres only (a SQLite file cannot be cut off); skipped without `TEST_DATABASE_URL`.

use std::collections::HashSet;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kapable_sdk::comms::types::LinkTelegramRequest;
use kapable_tools::database::ScratchDatabase;
use kapable_tools::proxy::TcpProxy;
use kapable_tools::smtp::SmtpServer;
use kapable_tools::telegram::FakeBotApi;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::ConnectOptions as _;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::watch;
use uuid::Uuid;

use crate::process::{self, Gateway, follow};

/// Clients posting to the busy room, besides the one in the bridged room and the mailers.
const POSTERS: usize = 16;
const MAILERS: usize = 4;
const CHAT: i64 = -700;
/// A bound on waiting for what must come, so that a loss fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(90);
/// How long an answer may take while the database is cut: far less than a client's timeout.
const PROMPT: Duration = Duration::from_secs(15);

/// What the gateway acknowledged, and what else it answered.
#[derive(Default)]
struct Seen {
    /// Posts answered 201: (room, id, body).
    posts: Mutex<Vec<(Uuid, String, String)>>,
    /// Message-IDs of sends answered 202.
    sends: Mutex<Vec<String>>,
    /// Answers 503 `unavailable`.
    unavailable: Mutex<usize>,
    /// Answers that are neither an acknowledgement nor 503 `unavailable`, and failed
    /// connections (the gateway itself never goes away in this test).
    unexpected: Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_answers_503_and_everything_catches_up_once_it_returns() {
    let Some(database) = ScratchDatabase::postgres().await else {
        eprintln!("skipped: set TEST_DATABASE_URL to run on Postgres");
        return;
    };
    let token = process::create_org(&database.url);
    let options = PgConnectOptions::from_str(&database.url).expect("a Postgres URL");
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let server = tokio::net::lookup_host(&server).await.unwrap().next().expect("an address");
    let proxy = TcpProxy::start(server).await.expect("the proxy starts");
    let proxied = options.host("127.0.0.1").port(proxy.addr.port()).to_url_lossy().to_string();

    let smtp = SmtpServer::start(&[]).await;
    let fake = FakeBotApi::start().await;
    let flags = [
        "--smtp-url",
        &smtp.url,
        "--outbox-lease-secs",
        "2",
        "--send-per-minute",
        "1000000",
        "--send-per-hour",
        "1000000",
        "--send-per-day",
        "1000000",
        "--telegram-api-url",
        &fake.url,
        "--telegram-chat-interval-ms",
        "0",
        "--telegram-poll-timeout-secs",
        "1",
    ];
    let env = [("TELEGRAM_BOT_TOKEN", "4242:test-token")];
    let gateway = Gateway::start(&proxied, &flags, &env).await;
    let fixture = Arc::new(process::fixture(&gateway.url, &token, 2).await);
    let (busy, bridged) = (fixture.rooms[0], fixture.rooms[1]);
    link(&gateway.url, &token, bridged).await;

    // The subscriber reaches the gateway through a proxy of its own, cut with the database,
    // so that it reconnects while the database is away and resumes once it is back.
    let gateway_addr = gateway.url["http://".len()..].parse().unwrap();
    let stream_link = TcpProxy::start(gateway_addr).await.expect("the proxy starts");
    let (done, targets) = watch::channel(None);
    let stream_url = format!("http://{}", stream_link.addr);
    let subscriber = tokio::spawn(follow(stream_url, token.clone(), busy, targets));
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = watch::channel(false);
    let mut clients = Vec::new();
    for n in 0..POSTERS + MAILERS + 1 {
        let what = match n {
            0 => Write::Post(bridged),
            n if n <= MAILERS => Write::Send(fixture.mailbox),
            _ => Write::Post(busy),
        };
        let client = Client { url: gateway.url.clone(), token: token.clone(), seen: seen.clone() };
        clients.push(tokio::spawn(client.run(what, n, stopped.clone())));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_cut = seen.sends.lock().unwrap().clone();
    proxy.cut();
    stream_link.cut();
    fake.user_says(CHAT, (7, "Ada", "Lovelace"), "said while the database was away");
    let cut_at = tokio::time::Instant::now();
    answers_unavailable_while_cut(&gateway, &token, busy).await;
    eprintln!("503 answers while cut came within {:?}", cut_at.elapsed());
    stream_link.restore();
    // Long enough for every worker to meet the cut database a few times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = *seen.unavailable.lock().unwrap();
    proxy.restore();
    gateway.wait_ready().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send_replace(true);
    for client in clients {
        client.await.expect("a client ran to its end");
    }

    let unexpected = seen.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "answers other than 2xx or 503 `unavailable`: {unexpected:?}");
    assert!(during > 0, "the load saw no 503 while the database was cut");
    let posts = seen.posts.lock().unwrap().clone();
    let stored = posts_stored_once(&gateway, &token, busy, &posts).await;
    let last = stored.last().map_or(0, |m| m.0);
    done.send_replace(Some([(busy, last)].into()));
    let streamed = tokio::time::timeout(DEADLINE, subscriber).await.expect("caught up").unwrap();
    assert_eq!(streamed, stored, "the stream resumed with every message once, in order");

    let sends = seen.sends.lock().unwrap().clone();
    assert!(before_cut.len() > MAILERS, "the load sent too little to matter");
    sends_delivered(&smtp, &sends).await;
    relay_caught_up(&gateway, &token, &fake, bridged, &posts).await;
    eprintln!(
        "{} posts and {} sends acknowledged, {during} answers 503 while cut, none lost",
        posts.len(),
        sends.len()
    );
}

/// While the database is cut, an operation answers 503 `unavailable` within [`PROMPT`], and
/// `/readyz` answers 503.
async fn answers_unavailable_while_cut(gateway: &Gateway, token: &str, room: Uuid) {
    let http = reqwest::Client::builder().timeout(PROMPT).build().unwrap();
    let messages = format!("{}/v1/rooms/{room}/messages", gateway.url);
    let listed = refused(|| http.get(&messages).bearer_auth(token)).await;
    assert_eq!(listed["error"]["code"], "unavailable", "{listed}");
    let posted =
        refused(|| http.post(&messages).bearer_auth(token).json(&json!({ "body": "cut" }))).await;
    assert_eq!(posted["error"]["code"], "unavailable", "{posted}");
    let ready = refused(|| http.get(format!("{}/readyz", gateway.url))).await;
    assert_eq!(ready["status"], "unavailable", "{ready}");
}

/// The body of the first 503 answer to `request`, sent a few times in case a connection was
/// still on its way out when the cut began; every answer must come before the client's timeout.
async fn refused(request: impl Fn() -> reqwest::RequestBuilder) -> Value {
    for _ in 0..20 {
        let response = request().send().await.expect("an answer before the client gives up");
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            return response.json().await.expect("a JSON body");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway kept answering although its database was cut");
}

/// Links the room to the fake's chat, once the bridge has met the fake bot.
async fn link(url: &str, token: &str, room: Uuid) {
    let org = kapable_sdk::Client::new(url, token);
    for _ in 0..600 {
        let request = LinkTelegramRequest { chat_id: CHAT, ..Default::default() };
        match org.comms().link_telegram(room, request).await {
            Ok(_) => return,
            Err(error) if error.status() == Some(503) => {}
            Err(error) => panic!("linking the chat: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the bridge never met the fake Bot API");
}

/// Every acknowledged post of `room` is stored once; the room's messages as (seq, id).
async fn posts_stored_once(
    gateway: &Gateway,
    token: &str,
    room: Uuid,
    posts: &[(Uuid, String, String)],
) -> Vec<(i64, String)> {
    let messages = process::room_messages(&gateway.url, token, room).await;
    let stored: Vec<(i64, String)> = messages
        .iter()
        .map(|m| (m["seq"].as_i64().unwrap(), m["id"].as_str().unwrap().to_owned()))
        .collect();
    let bodies: Vec<&str> = messages.iter().map(|m| m["body"].as_str().unwrap()).collect();
    for (_, id, body) in posts.iter().filter(|p| p.0 == room) {
        assert!(stored.iter().any(|s| &s.1 == id), "acknowledged post {id} was lost");
        let copies = bodies.iter().filter(|b| *b == body).count();
        assert_eq!(copies, 1, "acknowledged post `{body}` is stored {copies} times");
    }
    stored
}

/// Every send answered 202 reaches the SMTP server.
async fn sends_delivered(smtp: &SmtpServer, sends: &[String]) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let ids: HashSet<String> =
            smtp.received().iter().filter_map(|m| process::message_id(&m.data)).collect();
        let missing = sends.iter().filter(|id| !ids.contains(*id)).count();
        if missing == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{missing} accepted sends never arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every acknowledged post of the bridged room reached the chat, in order, and what the chat
/// said while the database was away reached the room once.
async fn relay_caught_up(
    gateway: &Gateway,
    token: &str,
    fake: &FakeBotApi,
    room: Uuid,
    posts: &[(Uuid, String, String)],
) {
    let wanted: Vec<String> =
        posts.iter().filter(|p| p.0 == room).map(|p| format!("org: {}", p.2)).collect();
    assert!(!wanted.is_empty(), "nothing was posted in the bridged room");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let sent: Vec<String> = fake.sent().into_iter().map(|s| s.text).collect();
        let mut at = sent.iter();
        // In order: each wanted text after the previous one (a relay cut mid-way may repeat).
        let missing = wanted.iter().filter(|w| !at.any(|s| s == *w)).count();
        let from_chat = process::room_messages(&gateway.url, token, room).await;
        let from_chat =
            from_chat.iter().filter(|m| m["body"] == "said while the database was away").count();
        if missing == 0 && from_chat == 1 {
            return;
        }
        assert!(from_chat <= 1, "the chat's message was posted {from_chat} times");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay did not catch up: {missing} posts missing or out of order, the chat's \
             message posted {from_chat} times"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a client writes.
#[derive(Clone, Copy)]
enum Write {
    Post(Uuid),
    Send(Uuid),
}

struct Client {
    url: String,
    token: String,
    seen: Arc<Seen>,
}

impl Client {
    /// Writes until told to stop, each attempt with a body of its own.
    async fn run(self, what: Write, n: usize, stop: watch::Receiver<bool>) {
        let http = reqwest::Client::builder().timeout(PROMPT).build().unwrap();
        let mut attempt = 0u64;
        while !*stop.borrow() {
            attempt += 1;
            let text = format!("c{n}-{attempt}");
            let request = match what {
                Write::Post(room) => http
                    .post(format!("{}/v1/rooms/{room}/messages", self.url))
                    .json(&json!({ "body": text })),
                Write::Send(mailbox) => http
                    .post(format!("{}/v1/mailboxes/{mailbox}/send", self.url))
                    .json(&process::send_body(&text)),
            };
            let answer = match request.bearer_auth(&self.token).send().await {
                Ok(response) => (response.status(), response.json::<Value>().await),
                Err(error) => {
                    self.seen.unexpected.lock().unwrap().push(format!("no answer: {error}"));
                    continue;
                }
            };
            match (what, answer) {
                (Write::Post(room), (StatusCode::CREATED, Ok(body))) => {
                    let id = body["id"].as_str().expect("an id").to_owned();
                    self.seen.posts.lock().unwrap().push((room, id, text));
                }
                (Write::Send(_), (StatusCode::ACCEPTED, Ok(body))) => {
                    let id = body["message_id"].as_str().expect("a Message-ID").to_owned();
                    self.seen.sends.lock().unwrap().push(id);
                }
                (_, (StatusCode::SERVICE_UNAVAILABLE, Ok(body)))
                    if body["error"]["code"] == "unavailable" =>
                {
                    *self.seen.unavailable.lock().unwrap() += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (_, (status, body)) => {
                    self.seen.unexpected.lock().unwrap().push(format!("{status} {body:?}"));
                }
            }
            if matches!(what, Write::Post(_)) && n == 0 {
                // The bridged room gets a gentle stream, which the relay can follow.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
