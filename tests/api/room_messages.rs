//! Room messages and presence: idempotent posts, annotations, input checks, paging under
//! concurrent writers, and presence going offline.

use std::collections::HashSet;

use kapable_sdk::comms::types::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use kapable_comms::store::{Position, Scope};

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn the_same_idempotency_key_returns_the_first_message(app: TestApp) {
    let org = app.sdk(&app.org.token);
    let room = app.room("r").await;
    let path = format!("/v1/rooms/{}/messages", room.id);
    let body = json!({ "body": "deploy v2" });
    let key = "deploy-2026-12-03";
    let send = |body: Value| {
        let request = app.http.post(format!("{}{path}", app.address)).bearer_auth(&app.org.token);
        request.header("Idempotency-Key", key).json(&body).send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let second = send(body).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);

    let listed =
        org.comms().list_room_messages(room.id, ListRoomMessagesQuery::default()).await.unwrap();
    assert_eq!(listed.messages.len(), 1);
}

async fn reactions_count_once_per_sender_and_metadata_keeps_the_latest_value(app: TestApp) {
    let (agent_id, key) = app.agent("reactor").await;
    let org = app.sdk(&app.org.token);
    let room = app.room("r").await;
    app.add_to_room(room.id, agent_id).await;
    let message = org
        .comms()
        .post_room_message(
            room.id,
            PostRoomMessageRequest { body: "ship it?".into(), ..Default::default() },
        )
        .await
        .unwrap();

    let thumbs = || AnnotateMessageRequest {
        annotations: vec![Annotation { kind: "reaction".into(), key: "👍".into(), value: None }],
    };
    org.comms().annotate_message(room.id, message.id, thumbs()).await.unwrap();
    org.comms().annotate_message(room.id, message.id, thumbs()).await.unwrap();
    let agent = app.sdk(&key);
    agent.comms().annotate_message(room.id, message.id, thumbs()).await.unwrap();
    let set = |value: Value| AnnotateMessageRequest {
        annotations: vec![Annotation {
            kind: "metadata".into(),
            key: "status".into(),
            value: Some(value),
        }],
    };
    agent.comms().annotate_message(room.id, message.id, set(json!("reviewing"))).await.unwrap();
    let annotated =
        agent.comms().annotate_message(room.id, message.id, set(json!("approved"))).await.unwrap();

    let summary =
        |kind: &str| annotated.annotations.iter().find(|a| a.kind == kind).unwrap().clone();
    assert_eq!((summary("reaction").key.as_str(), summary("reaction").count), ("👍", 2));
    assert_eq!(
        (summary("metadata").count, summary("metadata").value),
        (1, Some(json!("approved")))
    );

    let bad = AnnotateMessageRequest {
        annotations: vec![Annotation { kind: "vote".into(), key: "x".into(), value: None }],
    };
    let error = agent.comms().annotate_message(room.id, message.id, bad).await.unwrap_err();
    assert!(error.to_string().contains("annotations[0].kind"), "{error}");
}

async fn message_input_is_checked_and_each_error_names_its_field(app: TestApp) {
    let room = app.room("r").await;
    let path = format!("/v1/rooms/{}/messages", room.id);
    let cases = [
        (json!({ "body": "" }), "body"),
        (json!({ "body": "x".repeat(32 * 1024 + 1) }), "body"),
        (json!({ "body": "ok", "kind": "Not A Kind" }), "kind"),
        (json!({ "body": "ok", "reply_to": Uuid::now_v7() }), "reply_to"),
        (json!({ "body": "ok", "metadata": "text" }), "metadata"),
    ];
    for (body, field) in cases {
        let (status, answer) =
            app.call(Method::POST, &path, Some(&app.org.token), Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{field}: {answer}");
    }
    let (status, _) = app
        .call(
            Method::POST,
            &path,
            Some(&app.org.token),
            Some(json!({ "body": "x".repeat(32 * 1024) })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "a body of exactly the limit is accepted");
}

async fn paging_neither_skips_nor_repeats_while_four_writers_post(app: TestApp) {
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    let org = app.sdk(&app.org.token);
    let room = app.room("busy").await;

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = app.sdk(&app.org.token);
            tokio::spawn(async move {
                for i in 0..EACH {
                    let request =
                        PostRoomMessageRequest { body: format!("{w}-{i}"), ..Default::default() };
                    client.comms().post_room_message(room.id, request).await.unwrap();
                }
            })
        })
        .collect();

    // Follow the room with `after` while the writers post.
    let mut followed: Vec<RoomMessage> = Vec::new();
    let mut cursor = "0".to_owned();
    while followed.len() < WRITERS * EACH {
        let query = ListRoomMessagesQuery {
            limit: Some(7),
            after: Some(cursor.clone()),
            ..Default::default()
        };
        let page = org.comms().list_room_messages(room.id, query).await.unwrap();
        followed.extend(page.messages);
        cursor = page.next_cursor.expect("`after` pages always give the next cursor");
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let seqs: Vec<i64> = followed.iter().map(|m| m.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order, no repeats: {seqs:?}");
    let bodies: HashSet<&str> = followed.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies.len(), WRITERS * EACH);

    // And back from the newest, page by page.
    let mut back = Vec::new();
    let mut before = None;
    loop {
        let query =
            ListRoomMessagesQuery { limit: Some(9), before: before.clone(), ..Default::default() };
        let page = org.comms().list_room_messages(room.id, query).await.unwrap();
        back.extend(page.messages.into_iter().map(|m| m.seq));
        before = page.next_cursor;
        if before.is_none() {
            break;
        }
    }
    back.reverse();
    assert_eq!(back, seqs);
}

async fn a_heartbeat_older_than_the_ttl_reads_offline(app: TestApp) {
    let app = app.with_presence_ttl(1).await;
    let (agent_id, key) = app.agent("sleeper").await;
    let org = app.sdk(&app.org.token);
    let room = app.room("r").await;
    app.add_to_room(room.id, agent_id).await;
    let agent = app.sdk(&key);
    let entry =
        agent.comms().heartbeat(room.id, agent_id, HeartbeatRequest::default()).await.unwrap();
    assert!(entry.online);
    assert_eq!(entry.status, "active");

    let mut online = true;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        online = org.comms().room_presence(room.id).await.unwrap().presence[0].online;
        if !online {
            break;
        }
    }
    assert!(!online, "a heartbeat older than the 1 s TTL reads offline");

    let other = app.sdk(&app.org.agent_key);
    let error =
        other.comms().heartbeat(room.id, agent_id, HeartbeatRequest::default()).await.unwrap_err();
    assert_eq!(error.status(), Some(403), "an agent reports only for itself");
    let bad = HeartbeatRequest { status: Some("asleep".into()), ..Default::default() };
    assert_eq!(
        agent.comms().heartbeat(room.id, agent_id, bad).await.unwrap_err().status(),
        Some(400)
    );
}

/// Many posts at once share group commits: each acknowledged post is stored once, every room
/// counts 1, 2, 3 ... without a hole, and its events follow the same order.
async fn concurrent_posts_in_several_rooms_keep_each_rooms_order_without_holes(app: TestApp) {
    const ROOMS: usize = 3;
    const EACH: usize = 60;
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        rooms.push(app.room(&format!("group-{r}")).await.id);
    }
    let posts: Vec<_> = (0..ROOMS * EACH)
        .map(|i| {
            let client = app.sdk(&app.org.token);
            let room_id = rooms[i % ROOMS];
            // Every fifth post carries a key, and takes the path that looks it up.
            let idempotency_key = (i % 5 == 0).then(|| format!("key-{i}"));
            let request = PostRoomMessageRequest {
                body: i.to_string(),
                idempotency_key,
                ..Default::default()
            };
            tokio::spawn(async move { client.comms().post_room_message(room_id, request).await })
        })
        .collect();
    let mut acknowledged = HashSet::new();
    for post in posts {
        acknowledged.insert(post.await.unwrap().expect("every post is accepted").id);
    }
    assert_eq!(acknowledged.len(), ROOMS * EACH);

    let store = kapable_comms::cli::open(&app.database_url).await.unwrap();
    let org = app.sdk(&app.org.token);
    for room_id in rooms {
        let query = ListRoomMessagesQuery {
            limit: Some(200),
            after: Some("0".into()),
            ..Default::default()
        };
        let stored = org.comms().list_room_messages(room_id, query).await.unwrap().messages;
        let seqs: Vec<i64> = stored.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=EACH as i64).collect::<Vec<_>>(), "no hole, no repeat");
        assert!(stored.iter().all(|m| acknowledged.contains(&m.id)));

        // On Postgres a committed event is readable once older transactions of the whole
        // server (other tests' too) have ended.
        let mut event_seqs = Vec::new();
        for _ in 0..100 {
            let events = store.events_after(Scope::Room(room_id), Position::default(), 500);
            event_seqs = events
                .await
                .unwrap()
                .iter()
                .filter(|e| e.kind == "message")
                .map(|e| e.data()["seq"].as_i64().unwrap())
                .collect();
            if event_seqs.len() == EACH {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(event_seqs, seqs, "the room's events in the order of its messages");
    }
}

/// A post that cannot be stored (its room is gone) fails alone, whatever batch it shared.
async fn a_post_that_fails_in_a_batch_fails_alone(app: TestApp) {
    let room = app.room("mixed").await;
    let store = kapable_comms::cli::open(&app.database_url).await.unwrap();
    let posts: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            let room_id = if i % 10 == 3 { Uuid::now_v7() } else { room.id };
            let message = app.org_message(room_id, &i);
            tokio::spawn(async move { (room_id, store.post_message(message).await) })
        })
        .collect();
    let mut stored = 0;
    for post in posts {
        let (room_id, posted) = post.await.unwrap();
        match room_id == room.id {
            true => stored += usize::from(posted.expect("a good post is stored").1),
            false => assert!(posted.is_err(), "a post into no room is refused"),
        }
    }
    assert_eq!(stored, 36);
    let newest = store.messages_before(room.id, None, 1).await.unwrap();
    assert_eq!(newest[0].seq, 36, "the good posts count without a hole");
}

on_both_databases!(
    concurrent_posts_in_several_rooms_keep_each_rooms_order_without_holes,
    a_post_that_fails_in_a_batch_fails_alone,
    the_same_idempotency_key_returns_the_first_message,
    reactions_count_once_per_sender_and_metadata_keeps_the_latest_value,
    message_input_is_checked_and_each_error_names_its_field,
    paging_neither_skips_nor_repeats_while_four_writers_post,
    a_heartbeat_older_than_the_ttl_reads_offline,
);
