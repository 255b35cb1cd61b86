//! Measures how many sends the gateway accepts per second, and how fast its outbox worker
//! delivers them to a local SMTP server (the test SMTP listener of `kapable_tools::smtp`).
//!
//! ```sh
//! cargo run --release -p kapable-tools --bin mail-throughput                 # SQLite
//! cargo run --release -p kapable-tools --bin mail-throughput -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/kapable_bench --sends 2000 --clients 16
//! ```
//!
//! Acceptance is timed from the first request to the last 202; delivery from the first request
//! to the SMTP server's receipt of the last message. Both run at once, as in production.
//!
//! Meanwhile one client posts to a room, one post at a time, and the latency of its posts is
//! reported for the two phases: while sends are accepted, and while the outbox drains after.
//! On SQLite every writer takes the same lock, so this shows whether a post waits its turn or
//! starves behind the outbox's recordings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use kapable_sdk::comms::types::{
    CreateMailboxRequest, CreateRoomRequest, PostRoomMessageRequest, SendEmailRequest,
    SetMailboxQuotasRequest,
};
use kapable_tools::smtp::SmtpServer;
use kapable_tools::{Summary, start_with};
use tokio::time::Instant;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let sends: usize = value("--sends").map_or(Ok(2000), |v| v.parse()).context("--sends")?;
    let clients: usize = value("--clients").map_or(Ok(16), |v| v.parse()).context("--clients")?;
    let scratch = std::env::temp_dir().join(format!("kapable-mail-{}", Uuid::now_v7()));
    let database_url = value("--database-url")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/comms.db", scratch.display()));

    let smtp = SmtpServer::start(&[]).await;
    let store = kapable_comms::cli::open(&database_url).await?;
    let org =
        kapable_comms::admin::create_org(&store, &format!("mail-{}", Uuid::now_v7()), None).await?;
    let smtp_url = smtp.url.clone();
    let gateway = start_with(&database_url, move |s| s.smtp_url = Some(smtp_url)).await?;
    let client = kapable_sdk::Client::new(&gateway.url, org.app_token.expose());
    let address = format!("bench-{}@agents.example.com", Uuid::now_v7().simple());
    let request = CreateMailboxRequest { address, ..Default::default() };
    let mailbox = client.comms().create_mailbox(request).await?.id;
    // The benchmark measures the send path with its limit check, not the default limits.
    let unlimited = SetMailboxQuotasRequest {
        per_minute: Some(1_000_000),
        per_hour: Some(1_000_000),
        per_day: Some(1_000_000),
    };
    client.comms().set_mailbox_quotas(mailbox, unlimited).await?;
    let room = CreateRoomRequest { name: "drain".into(), ..Default::default() };
    let room = client.comms().create_room(room).await?.room.id;

    eprintln!("sending {sends} emails from {clients} clients, posting meanwhile ...");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let draining = Arc::new(AtomicBool::new(false));
    let delivered_all = Arc::new(AtomicBool::new(false));
    let poster = {
        let (client, draining, done) =
            (client.clone(), Arc::clone(&draining), Arc::clone(&delivered_all));
        tokio::spawn(async move {
            // (whether the outbox was draining when the post was sent, its latency)
            let mut posts = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let phase = draining.load(Ordering::Relaxed);
                let sent = Instant::now();
                let post =
                    PostRoomMessageRequest { body: "meanwhile".into(), ..Default::default() };
                client.comms().post_room_message(room, post).await?;
                posts.push((phase, sent.elapsed()));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok::<_, kapable_sdk::Error>(posts)
        })
    };
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (client, next) = (client.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < sends {
                    let request = SendEmailRequest {
                        to: "sink@example.com".into(),
                        subject: "throughput".into(),
                        body_text: Some("hello".into()),
                        ..Default::default()
                    };
                    client.comms().send_email(mailbox, request).await?;
                }
                Ok::<_, kapable_sdk::Error>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    let accepted = started.elapsed();
    draining.store(true, Ordering::Relaxed);
    let received = smtp.wait_for(sends, Duration::from_secs(600)).await.len();
    let delivered = started.elapsed();
    delivered_all.store(true, Ordering::Relaxed);
    let posts = poster.await??;
    let phase = |draining: bool| {
        let latencies = posts.iter().filter(|(d, _)| *d == draining).map(|(_, l)| *l).collect();
        Summary::of(latencies).map_or("no posts".into(), |summary| summary.to_string())
    };

    println!(
        "{sends} sends, {clients} clients, {}",
        if database_url.starts_with("postgres") { "postgres" } else { "sqlite" }
    );
    println!(
        "  accepted   {:>8.0} sends/s  ({:.2} s)",
        rate(sends, accepted),
        accepted.as_secs_f64()
    );
    println!(
        "  delivered  {:>8.0} mails/s  ({:.2} s, {received} received)",
        rate(received, delivered),
        delivered.as_secs_f64()
    );
    println!("  posts while accepting  {}", phase(false));
    println!("  posts while draining   {}", phase(true));
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}
