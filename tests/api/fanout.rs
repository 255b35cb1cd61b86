//! Fan-out: the streams of a room share one reader, a subscriber that falls behind catches up
//! from the log without a gap, a token holds a bounded number of streams, and `/metrics` tells
//! what is open.

use std::time::Duration;

use kapable_comms::fanout::Hub;
use kapable_comms::store::Scope;
use kapable_sdk::comms::types::*;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::on_both_databases;
use crate::sse::{self, SseReader};

const WITHIN: Duration = Duration::from_secs(20);

async fn open(app: &TestApp, room_id: Uuid, token: &str) -> (StatusCode, Option<SseReader>) {
    let url = format!("{}/v1/rooms/{room_id}/stream", app.address);
    sse::open(&app.http, &url, Some(token), None).await
}

/// The bodies of the next `count` messages of a stream.
async fn bodies(reader: &mut SseReader, count: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let event = reader.next(WITHIN).await.expect("the stream stays open");
        if event.event == "message" {
            seen.push(event.data["body"].as_str().unwrap().to_owned());
        }
    }
    seen
}

/// The value of an unlabelled metric.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.http.get(format!("{}/metrics", app.address)).send().await.unwrap();
    let text = text.text().await.unwrap();
    let line = text.lines().find(|l| l.split(' ').next() == Some(name));
    line.unwrap_or_else(|| panic!("{name} in {text}")).split(' ').nth(1).unwrap().parse().unwrap()
}

async fn streams_of_one_room_share_one_reader_and_each_gets_every_message(app: TestApp) {
    const SUBSCRIBERS: usize = 20;
    const MESSAGES: usize = 40;
    let room = app.room("crowded").await;
    let mut readers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        readers.push(open(&app, room.id, &app.org.token).await.1.expect("a stream"));
    }
    assert_eq!(metric(&app, "kapable_streams_open").await, SUBSCRIBERS as f64);
    assert_eq!(metric(&app, "kapable_stream_feeds").await, 1.0, "one reader for the room");

    let posts: Vec<_> = (0..MESSAGES)
        .map(|i| {
            let client = app.sdk(&app.org.token);
            let request = PostRoomMessageRequest { body: i.to_string(), ..Default::default() };
            tokio::spawn(async move { client.comms().post_room_message(room.id, request).await })
        })
        .collect();
    let mut by_seq = vec![String::new(); MESSAGES];
    for post in posts {
        let message = post.await.unwrap().unwrap();
        by_seq[message.seq as usize - 1] = message.body;
    }
    for reader in &mut readers {
        assert_eq!(bodies(reader, MESSAGES).await, by_seq, "every message once, in seq order");
    }
    assert!(metric(&app, "kapable_stream_events_total").await >= (SUBSCRIBERS * MESSAGES) as f64);

    drop(readers);
    let mut open_now = SUBSCRIBERS as f64;
    for _ in 0..100 {
        open_now = metric(&app, "kapable_streams_open").await;
        if open_now == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open_now, 0.0, "closed streams are no longer counted");
}

/// A subscriber that takes nothing while far more batches go by than the feed keeps reads the
/// log itself afterwards, and gets every message once, in order.
async fn a_subscriber_that_falls_behind_catches_up_from_the_log(app: TestApp) {
    const MESSAGES: i64 = 150;
    let room = app.room("slow").await;
    let store = app.store().await;
    let hub = Hub::default();
    let head = store.head().await.unwrap();
    let mut keeping_up = hub.subscribe(&store, Scope::Room(room.id), head);
    let mut behind = hub.subscribe(&store, Scope::Room(room.id), head);

    for i in 1..=MESSAGES {
        store.post_message(app.org_message(room.id, &i)).await.unwrap();
        // Take each post as its own batch, so that the feed sends one batch per post.
        let mut seen = 0;
        while seen < i {
            let frames = tokio::time::timeout(WITHIN, keeping_up.next(&store)).await.unwrap();
            seen = frames.unwrap().last().map_or(seen, |f| f.event.data["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(hub.feeds(), 1);

    let mut seqs = Vec::new();
    while seqs.len() < MESSAGES as usize {
        let frames = tokio::time::timeout(WITHIN, behind.next(&store)).await.unwrap().unwrap();
        let messages = frames.iter().filter(|f| f.event.event == "message");
        seqs.extend(messages.map(|f| f.event.data["seq"].as_i64().unwrap()));
    }
    assert_eq!(seqs, (1..=MESSAGES).collect::<Vec<_>>());
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

async fn a_token_holds_at_most_its_streams_and_a_closed_one_frees_its_slot(app: TestApp) {
    let app = app.restart(|settings| settings.max_streams_per_token = 2).await;
    let room = app.room("limited").await;
    let first = open(&app, room.id, &app.org.token).await.1.expect("a first stream");
    let _second = open(&app, room.id, &app.org.token).await.1.expect("a second stream");

    let url = format!("{}/v1/rooms/{}/stream", app.address, room.id);
    let refused = app.http.get(&url).bearer_auth(&app.org.token).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"].as_str().unwrap().contains("MAX_STREAMS_PER_TOKEN"));

    app.add_to_room(room.id, app.org.agent_id).await;
    let (status, _agents) = open(&app, room.id, &app.org.agent_key).await;
    assert_eq!(status, StatusCode::OK, "another token has streams of its own");

    drop(first);
    let mut status = StatusCode::TOO_MANY_REQUESTS;
    let mut reopened = None;
    for _ in 0..100 {
        (status, reopened) = open(&app, room.id, &app.org.token).await;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK, "a closed stream frees its slot");
    drop(reopened);
}

/// A stream sends a comment once it has been silent for 15 s, counted from the last bytes it
/// sent (an event included), so that proxies keep it open.
#[tokio::test]
async fn a_silent_stream_sends_a_comment_fifteen_seconds_after_its_last_bytes() {
    use futures::StreamExt as _;

    let app = TestApp::spawn_sqlite().await;
    let room = app.room("quiet").await;
    let url = format!("{}/v1/rooms/{}/stream", app.address, room.id);
    let response = app.http.get(url).bearer_auth(&app.org.token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut chunks = response.bytes_stream();
    let mut next_text = async || {
        let chunk = tokio::time::timeout(Duration::from_secs(30), chunks.next()).await;
        String::from_utf8(chunk.expect("bytes within 30 s").unwrap().unwrap().to_vec()).unwrap()
    };
    assert!(next_text().await.starts_with(": connected"));

    tokio::time::sleep(Duration::from_secs(2)).await;
    let request = PostRoomMessageRequest { body: "one".into(), ..Default::default() };
    app.sdk(&app.org.token).comms().post_room_message(room.id, request).await.unwrap();
    assert!(next_text().await.contains("event: message"));
    let delivered = std::time::Instant::now();

    assert_eq!(next_text().await, ":\n\n", "a keep-alive comment comes next");
    let quiet = delivered.elapsed();
    assert!(
        quiet >= Duration::from_secs(14),
        "silent since the message, not the connect: {quiet:?}"
    );
}

/// A stopping server ends its streams, which never finish by themselves, so that it can stop;
/// the client reconnects elsewhere with its `Last-Event-ID`.
async fn a_stopping_server_ends_its_streams(app: TestApp) {
    use futures::StreamExt as _;

    let room = app.room("closing").await;
    let (address, stop) = app.second_instance().await;
    let url = format!("{address}/v1/rooms/{}/stream", room.id);
    let response = app.http.get(&url).bearer_auth(&app.org.token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut chunks = response.bytes_stream();
    let first = chunks.next().await.expect("the first bytes").unwrap();
    assert!(first.starts_with(b": connected"));

    drop(stop);
    let rest = tokio::time::timeout(WITHIN, async {
        let mut rest = Vec::new();
        while let Some(Ok(chunk)) = chunks.next().await {
            rest.extend_from_slice(&chunk);
        }
        rest
    });
    let rest = rest.await.expect("the stream ends when its server stops");
    assert!(rest.is_empty(), "nothing but the end: {}", String::from_utf8_lossy(&rest));
    let refused = app.http.get(&url).bearer_auth(&app.org.token).send().await;
    assert!(refused.is_err(), "the stopped instance accepts nothing");
}

on_both_databases!(
    a_stopping_server_ends_its_streams,
    streams_of_one_room_share_one_reader_and_each_gets_every_message,
    a_subscriber_that_falls_behind_catches_up_from_the_log,
    a_token_holds_at_most_its_streams_and_a_closed_one_frees_its_slot,
);
