//! Measures how long a room message takes from its POST to its arrival at an SSE subscriber:
//! on the instance that accepted it, and (on Postgres) on a second instance that learns of it
//! through `NOTIFY`. Both instances run in this process, on their own ports, stores and buses.
//!
//! ```sh
//! cargo run --release -p kapable-tools --bin event-latency                       # SQLite
//! createdb -h 127.0.0.1 -U postgres kapable_bench
//! cargo run --release -p kapable-tools --bin event-latency -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/kapable_bench --messages 2000
//! ```
//!
//! Messages are posted one after another, 2 ms apart, so the figures are latencies of an
//! unloaded gateway, not of one at its throughput limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use kapable_sdk::comms::types::{CreateRoomRequest, PostRoomMessageRequest};
use kapable_tools::{Summary, start};
use tokio::time::Instant;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let messages: usize =
        value("--messages").map_or(Ok(1000), |v| v.parse()).context("--messages")?;
    let scratch = std::env::temp_dir().join(format!("kapable-latency-{}", Uuid::now_v7()));
    let database_url = value("--database-url")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/comms.db", scratch.display()));
    let postgres = database_url.starts_with("postgres");

    let store = kapable_comms::cli::open(&database_url).await?;
    let org =
        kapable_comms::admin::create_org(&store, &format!("latency-{}", Uuid::now_v7()), None)
            .await?;
    let token = org.app_token.expose().to_owned();
    let a = start(&database_url).await?;
    let b = if postgres { Some(start(&database_url).await?) } else { None };

    let client = kapable_sdk::Client::new(&a.url, &token);
    let room = CreateRoomRequest { name: "latency".into(), ..Default::default() };
    let room_id = client.comms().create_room(room).await?.room.id;

    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; messages]));
    let same = subscribe(&a.url, &token, room_id, messages, Arc::clone(&sent));
    let across =
        b.as_ref().map(|b| subscribe(&b.url, &token, room_id, messages, Arc::clone(&sent)));
    tokio::time::sleep(Duration::from_millis(300)).await;

    eprintln!(
        "posting {messages} messages on {} ...",
        if postgres { "postgres" } else { "sqlite" }
    );
    for i in 0..messages {
        let request = PostRoomMessageRequest { body: i.to_string(), ..Default::default() };
        sent.lock().unwrap()[i] = Some(Instant::now());
        client.comms().post_room_message(room_id, request).await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    println!(
        "post -> SSE delivery, {messages} messages, {database_url}",
        database_url = redact(&database_url)
    );
    report("same instance", same.await?);
    if let Some(across) = across {
        report("other instance (NOTIFY)", across.await?);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Follows the room on `url` until `count` messages came; their latencies.
fn subscribe(
    url: &str,
    token: &str,
    room_id: Uuid,
    count: usize,
    sent: Arc<Mutex<Vec<Option<Instant>>>>,
) -> tokio::task::JoinHandle<Vec<Duration>> {
    let client = kapable_sdk::Client::new(url, token);
    tokio::spawn(async move {
        let mut events = Box::pin(client.comms().follow_room(room_id, None));
        let mut latencies = Vec::with_capacity(count);
        let deadline = Instant::now() + Duration::from_secs(120);
        while latencies.len() < count {
            let Ok(Some(Ok(event))) = tokio::time::timeout_at(deadline, events.next()).await else {
                eprintln!("stopped after {} of {count} messages", latencies.len());
                break;
            };
            let arrived = Instant::now();
            let index = event.data["body"].as_str().and_then(|b| b.parse::<usize>().ok());
            if let (true, Some(i)) = (event.event == "message", index) {
                let posted = sent.lock().unwrap()[i];
                latencies.extend(posted.map(|at| arrived - at));
            }
        }
        latencies
    })
}

fn report(label: &str, latencies: Vec<Duration>) {
    match Summary::of(latencies) {
        Some(summary) => println!("  {label:<26} {summary}"),
        None => println!("  {label:<26} no messages arrived"),
    }
}

/// The URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if url[scheme + 3..at].contains(':') => {
            let user_end = url[scheme + 3..at].find(':').unwrap() + scheme + 3;
            format!("{}:***{}", &url[..user_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}
