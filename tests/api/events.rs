//! Live events: SSE streams that resume without gaps, the wait_for_events long poll, commit
//! order under concurrent writers, and fan-out between two gateway instances.

use std::collections::HashSet;
use std::time::Duration;

use kapable_sdk::comms::types::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::on_both_databases;
use crate::sse::{self, SseReader};

const WITHIN: Duration = Duration::from_secs(20);

async fn post(app: &TestApp, room_id: Uuid, body: &str) -> RoomMessage {
    let request = PostRoomMessageRequest { body: body.into(), ..Default::default() };
    app.sdk(&app.org.token).comms().post_room_message(room_id, request).await.unwrap()
}

async fn stream(app: &TestApp, path: &str, token: &str, last: Option<&str>) -> SseReader {
    let url = format!("{}{path}", app.address);
    let (status, reader) = sse::open(&app.http, &url, Some(token), last).await;
    assert_eq!(status, StatusCode::OK);
    reader.unwrap()
}

/// Reads events until `count` `message` events have come; returns them.
async fn messages(reader: &mut SseReader, count: usize) -> Vec<sse::SseEvent> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let event = reader.next(WITHIN).await.expect("the stream stays open");
        if event.event == "message" {
            seen.push(event);
        }
    }
    seen
}

async fn a_resumed_stream_delivers_every_message_once_and_in_order(app: TestApp) {
    const TOTAL: usize = 30;
    let room_id = app.room("resume").await.id;
    let path = format!("/v1/rooms/{room_id}/stream");
    let mut first = stream(&app, &path, &app.org.token, None).await;

    let writer = {
        let client = app.sdk(&app.org.token);
        tokio::spawn(async move {
            for i in 0..TOTAL {
                let request =
                    PostRoomMessageRequest { body: format!("m{i}"), ..Default::default() };
                client.comms().post_room_message(room_id, request).await.unwrap();
            }
        })
    };
    let mut got = messages(&mut first, 10).await;
    drop(first);

    let last = got.last().unwrap().id.clone();
    let mut second = stream(&app, &path, &app.org.token, Some(&last)).await;
    got.extend(messages(&mut second, TOTAL - 10).await);
    writer.await.unwrap();

    let bodies: Vec<&str> = got.iter().map(|e| e.data["body"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies, expected, "every message once, in order, across the reconnect");
    let ids: HashSet<&str> = got.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), TOTAL);
}

async fn wait_for_events_answers_at_once_when_behind_and_empty_when_idle(app: TestApp) {
    let (agent_id, key) = app.agent("poller").await;
    let room_id = app.room("poll").await.id;
    app.add_to_room(room_id, agent_id).await;

    let start = app.tool(&key, "wait_for_events", json!({})).await;
    assert_eq!(start["isError"], false, "{start}");
    assert_eq!(start["structuredContent"]["events"], json!([]), "without a cursor: from now");
    let cursor = start["structuredContent"]["next_cursor"].as_str().unwrap().to_owned();

    post(&app, room_id, "one").await;
    post(&app, room_id, "two").await;
    // Events are waiting, so even a 30 s wait answers at once; the guard only stops a hang.
    // (Events that committed before the first call may come first: on Postgres a commit is
    // visible only once older transactions in the cluster end.)
    let mut bodies = Vec::new();
    let mut behind = Value::Null;
    let mut after = cursor.clone();
    while bodies.len() < 2 {
        let arguments = json!({ "after": after, "timeout_s": 30 });
        behind = tokio::time::timeout(
            Duration::from_secs(10),
            app.tool(&key, "wait_for_events", arguments),
        )
        .await
        .expect("answers at once when events are waiting");
        let events = behind["structuredContent"]["events"].as_array().unwrap().clone();
        bodies.extend(
            events.iter().filter(|e| e["event"] == "message").map(|e| e["data"]["body"].clone()),
        );
        after = behind["structuredContent"]["next_cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(bodies, [json!("one"), json!("two")]);
    let next = behind["structuredContent"]["next_cursor"].as_str().unwrap().to_owned();

    let idle = app.tool(&key, "wait_for_events", json!({ "after": next, "timeout_s": 1 })).await;
    assert_eq!(idle["structuredContent"]["events"], json!([]));
    assert_eq!(
        idle["structuredContent"]["next_cursor"],
        json!(next),
        "an empty wait keeps the cursor"
    );

    let waiting = {
        let (app_address, key, next) = (app.address.clone(), key.clone(), next.clone());
        tokio::spawn(async move {
            let url = format!("{app_address}/v1/events?after={next}&timeout_s=30");
            reqwest::Client::new()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    post(&app, room_id, "three").await;
    let woken = tokio::time::timeout(WITHIN, waiting)
        .await
        .expect("the wait ends when an event comes")
        .unwrap();
    assert_eq!(woken["events"][0]["data"]["body"], "three", "{woken}");

    let (status, bad) =
        app.call(Method::GET, "/v1/events?after=0&timeout_s=31", Some(&key), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("timeout_s"));
}

async fn followers_see_every_event_in_commit_order_under_concurrent_writers(app: TestApp) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let (agent_id, key) = app.agent("watcher").await;
    let mut rooms = Vec::new();
    for i in 0..4 {
        let room_id = app.room(&format!("r{i}")).await.id;
        app.add_to_room(room_id, agent_id).await;
        rooms.push(room_id);
    }
    let watcher = app.sdk(&key);
    let mut cursor =
        watcher.comms().wait_for_events(WaitForEventsQuery::default()).await.unwrap().next_cursor;

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (client, room_id) = (app.sdk(&app.org.token), rooms[w % rooms.len()]);
            tokio::spawn(async move {
                for i in 0..EACH {
                    let request =
                        PostRoomMessageRequest { body: format!("{w}-{i}"), ..Default::default() };
                    client.comms().post_room_message(room_id, request).await.unwrap();
                }
            })
        })
        .collect();

    let mut seen = Vec::new();
    while seen.len() < WRITERS * EACH {
        let query = WaitForEventsQuery {
            after: Some(cursor.clone()),
            timeout_s: Some(5),
            ..Default::default()
        };
        let batch = watcher.comms().wait_for_events(query).await.unwrap();
        assert!(
            !batch.events.is_empty() || seen.len() < WRITERS * EACH,
            "stalled at {}",
            seen.len()
        );
        seen.extend(batch.events.into_iter().filter(|e| e.event == "message"));
        cursor = batch.next_cursor;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let bodies: HashSet<&str> = seen.iter().map(|e| e.data["body"].as_str().unwrap()).collect();
    assert_eq!((seen.len(), bodies.len()), (WRITERS * EACH, WRITERS * EACH), "each exactly once");
    let ids: Vec<kapable_comms::store::Position> =
        seen.iter().map(|e| e.id.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "cursors only grow");
}

async fn a_cursor_older_than_retention_gets_cursor_expired(app: TestApp) {
    let room_id = app.room("old").await.id;
    let first = post(&app, room_id, "soon gone").await;
    let store = app.store().await;
    // On Postgres an event is pruned only once every older transaction on the server has ended,
    // and a test on another database of the same server may hold one open for a moment.
    let deadline = tokio::time::Instant::now() + WITHIN;
    let mut pruned = 0;
    while pruned == 0 && tokio::time::Instant::now() < deadline {
        let before = kapable_comms::store::now() + chrono::Duration::seconds(1);
        pruned = store.prune_events(before).await.unwrap();
        if pruned == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(pruned >= 1);
    post(&app, room_id, "kept").await;

    let path = format!("/v1/rooms/{room_id}/stream");
    let mut reader = stream(&app, &path, &app.org.token, Some("0")).await;
    let expired = reader.next(WITHIN).await.unwrap();
    assert_eq!(expired.event, "cursor_expired", "{expired:?}");
    let next = messages(&mut reader, 1).await;
    assert_eq!(next[0].data["body"], "kept");
    assert_ne!(next[0].data["id"], json!(first.id));
}

async fn streams_admit_only_those_who_may_see_them(app: TestApp) {
    let room_id = app.room("private").await.id;
    let (outsider_id, outsider) = app.agent("outsider").await;
    let other = app.other_org().await;
    let url = |path: &str| format!("{}{path}", app.address);

    let checks = [
        (format!("/v1/rooms/{room_id}/stream"), outsider.clone(), StatusCode::NOT_FOUND),
        (format!("/v1/rooms/{room_id}/stream"), other.token.clone(), StatusCode::NOT_FOUND),
        (format!("/v1/agents/{outsider_id}/stream"), other.token.clone(), StatusCode::NOT_FOUND),
        (
            format!("/v1/agents/{}/stream", app.org.agent_id),
            outsider.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/v1/orgs/{}/anomaly-feed", app.org.org_id),
            outsider.clone(),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("/v1/orgs/{}/anomaly-feed", app.org.org_id),
            other.token.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/v1/orgs/{}/anomaly-feed", app.org.org_id),
            String::new(),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (path, token, expected) in checks {
        let token = (!token.is_empty()).then_some(token.as_str());
        let (status, _) = sse::open(&app.http, &url(&path), token, None).await;
        assert_eq!(status, expected, "{path}");
    }
    let (status, _) = app
        .call(Method::GET, &format!("/v1/events?room_id={room_id}"), Some(&outsider), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "wait_for_events on a room of which one is no member"
    );
    stream(&app, &format!("/v1/agents/{outsider_id}/stream"), &outsider, None).await;
}

async fn a_stream_ticket_opens_one_stream_once(app: TestApp) {
    let (agent_id, key) = app.agent("browser").await;
    let ticket = app.sdk(&key).comms().create_stream_ticket().await.unwrap();
    assert!(ticket.ticket.starts_with("tk_"));
    let url = format!("{}/v1/agents/{agent_id}/stream?ticket={}", app.address, ticket.ticket);
    let (status, reader) = sse::open(&app.http, &url, None, None).await;
    assert_eq!(status, StatusCode::OK);
    drop(reader);
    let (again, _) = sse::open(&app.http, &url, None, None).await;
    assert_eq!(again, StatusCode::UNAUTHORIZED, "a ticket works once");
    let (status, _) = app.call(Method::GET, "/v1/me", Some(&ticket.ticket), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a ticket is not a bearer token");
}

async fn an_agent_stream_carries_invitations_and_a_removed_members_room_stream_ends(app: TestApp) {
    let (agent_id, key) = app.agent("listener").await;
    let mut agent_stream = stream(&app, &format!("/v1/agents/{agent_id}/stream"), &key, None).await;
    let room_id = app.room("invited").await.id;
    let org = app.sdk(&app.org.token);
    app.add_to_room(room_id, agent_id).await;

    let mut room_stream = stream(&app, &format!("/v1/rooms/{room_id}/stream"), &key, None).await;
    post(&app, room_id, "welcome").await;
    let mut kinds = Vec::new();
    while !kinds.contains(&"message".to_owned()) {
        kinds.push(agent_stream.next(WITHIN).await.unwrap().event);
    }
    assert_eq!(kinds, ["member_joined", "invitation", "message"], "in commit order");
    assert_eq!(messages(&mut room_stream, 1).await[0].data["body"], "welcome");

    org.comms().revoke_room_agent(room_id, agent_id).await.unwrap();
    let left = room_stream.next(WITHIN).await.expect("the member_left event");
    assert_eq!(left.event, "member_left");
    assert!(room_stream.next(WITHIN).await.is_none(), "the removed member's room stream ends");
}

/// Several instances share one database on Postgres only, so this runs there alone.
#[tokio::test]
async fn an_event_posted_on_one_postgres_instance_reaches_followers_on_another() {
    let Some(app) = TestApp::spawn_postgres().await else {
        eprintln!("skipped: set TEST_DATABASE_URL to run on Postgres");
        return;
    };
    let (agent_id, key) = app.agent("far-away").await;
    let room_id = app.room("shared").await.id;
    app.add_to_room(room_id, agent_id).await;
    let (b_address, _b) = app.second_instance().await;
    let b = kapable_sdk::Client::new(&b_address, &key);

    let url = format!("{b_address}/v1/rooms/{room_id}/stream");
    let (status, reader) = sse::open(&app.http, &url, Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = reader.unwrap();
    let cursor =
        b.comms().wait_for_events(WaitForEventsQuery::default()).await.unwrap().next_cursor;
    // The long poll answers at the first event of any kind (opening the stream above may
    // still add one), so it polls again until a message comes.
    let waiting = tokio::spawn(async move {
        let mut after = cursor;
        loop {
            let query = WaitForEventsQuery {
                after: Some(after),
                timeout_s: Some(30),
                ..Default::default()
            };
            let waited = b.comms().wait_for_events(query).await.unwrap();
            let bodies: Vec<Value> = waited
                .events
                .iter()
                .filter(|e| e.event == "message")
                .map(|e| e.data["body"].clone())
                .collect();
            if !bodies.is_empty() || waited.events.is_empty() {
                return bodies;
            }
            after = waited.next_cursor;
        }
    });

    tokio::time::sleep(Duration::from_millis(200)).await;
    post(&app, room_id, "from instance A").await;
    assert_eq!(messages(&mut reader, 1).await[0].data["body"], "from instance A");
    let bodies = tokio::time::timeout(WITHIN, waiting).await.unwrap().unwrap();
    assert_eq!(bodies, [json!("from instance A")]);
}

on_both_databases!(
    a_resumed_stream_delivers_every_message_once_and_in_order,
    wait_for_events_answers_at_once_when_behind_and_empty_when_idle,
    followers_see_every_event_in_commit_order_under_concurrent_writers,
    a_cursor_older_than_retention_gets_cursor_expired,
    streams_admit_only_those_who_may_see_them,
    a_stream_ticket_opens_one_stream_once,
    an_agent_stream_carries_invitations_and_a_removed_members_room_stream_ends,
);
