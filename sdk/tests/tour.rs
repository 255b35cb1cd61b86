//! The SDK against a real gateway, on SQLite and on Postgres (with `TEST_DATABASE_URL`): the
//! example tour, every step of it, and a stream that is cut and resumes where it was.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use kapable_sdk::comms::types::*;
use kapable_sdk::{Client, Error};
use kapable_tools::database::ScratchDatabase;
use kapable_tools::proxy::TcpProxy;

#[path = "../examples/tour.rs"]
#[expect(dead_code, reason = "the example's main is not run here")]
mod example;

/// A gateway on `database`, and a new org's app token.
async fn gateway(database: &ScratchDatabase) -> (kapable_tools::Instance, String) {
    let store = kapable_comms::cli::open(&database.url).await.unwrap();
    let org = kapable_comms::admin::create_org(&store, "sdk-tour", None).await.unwrap();
    let instance = kapable_tools::start(&database.url).await.unwrap();
    (instance, org.app_token.expose().to_owned())
}

async fn the_tour_runs_as_written(database: ScratchDatabase) {
    let (gateway, token) = gateway(&database).await;
    let client = Client::new(&gateway.url, token);
    let tour = example::tour(&client).await.unwrap();

    assert_eq!(tour.messages, ["Deployment started for v2.1", "On it."]);
    assert!(tour.agent_key.starts_with("ak_"));
    let streamed: Vec<&str> = tour.streamed.iter().map(String::as_str).collect();
    for event in ["member_joined", "message", "presence", "annotation", "member_left"] {
        assert!(streamed.contains(&event), "{event} is missing from {streamed:?}");
    }
    assert_eq!(streamed.iter().filter(|e| **e == "message").count(), 2, "{streamed:?}");
    let sent = client.comms().get_message(tour.email_id).await.unwrap();
    assert_eq!(sent.direction, "outbound");
    assert_eq!(sent.subject.as_deref(), Some("Your support ticket update"));
    let room = client.comms().get_room(tour.room_id).await.unwrap();
    assert!(room.participants.iter().all(|p| p.agent_id != Some(tour.agent_id)), "revoked");
}

async fn a_cut_stream_resumes_with_nothing_missing_or_repeated(database: ScratchDatabase) {
    let (gateway, token) = gateway(&database).await;
    let client = Client::new(&gateway.url, &token);
    let proxy = TcpProxy::start(gateway.url["http://".len()..].parse().unwrap()).await.unwrap();
    let through_proxy = Client::new(format!("http://{}", proxy.addr), &token);
    let request = CreateRoomRequest { name: "cut".into(), ..Default::default() };
    let room = client.comms().create_room(request).await.unwrap().room;
    let post = async |body: &str| {
        let request = PostRoomMessageRequest { body: body.into(), ..Default::default() };
        client.comms().post_room_message(room.id, request).await
    };

    let mut stream = Box::pin(through_proxy.comms().follow_room(room.id, Some("0".into())));
    post("one").await.unwrap();
    assert_eq!(next_message(&mut stream).await, "one");

    proxy.cut();
    post("two").await.unwrap();
    post("three").await.unwrap();
    // Long enough for the follower to find the gateway unreachable and try again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.restore();
    post("four").await.unwrap();

    let mut rest = Vec::new();
    while rest.len() < 3 {
        rest.push(next_message(&mut stream).await);
    }
    assert_eq!(rest, ["two", "three", "four"]);
}

/// The body of the stream's next `message` event.
async fn next_message(
    stream: &mut (impl Stream<Item = Result<StreamEvent, Error>> + Unpin),
) -> String {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("an event within 20 s")
            .expect("the stream goes on")
            .expect("no error");
        if event.event == "message" {
            return event.data["body"].as_str().unwrap().to_owned();
        }
    }
}

macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(kapable_tools::database::ScratchDatabase::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    match kapable_tools::database::ScratchDatabase::postgres().await {
                        Some(database) => super::$scenario(database).await,
                        None => eprintln!("skipped: set TEST_DATABASE_URL to run it on Postgres"),
                    }
                }
            )*
        }
    };
}

on_both_databases!(the_tour_runs_as_written, a_cut_stream_resumes_with_nothing_missing_or_repeated);
