//! `fanout`: S SSE subscribers follow one room while P messages a second are posted into it
//! for D seconds. Each body is `"<index> <nanoseconds since the bench's clock>"`, so every
//! subscriber measures post-to-delivery latency and counts each message it receives: a
//! subscriber is complete when it got every acknowledged message exactly once.
//!
//! Subscribers are opened 100 at a time, each batch waiting for its `: connected` comments,
//! and posting starts once all are in. After the last post the bench waits up to
//! `--drain-secs` for late deliveries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::BodyExt as _;
use kapable_sdk::comms::types::CreateRoomRequest;
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use crate::gateway::Gateway;
use crate::load::{self, Target, expect_success};
use crate::report::{Row, Tail};
use crate::sse::SseReader;
use crate::{Args, Scenario};

/// Subscribers opened at once.
const BATCH: usize = 100;
/// How long a batch of subscribers has to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// What every subscriber shares.
#[derive(Debug, Clone)]
struct Shared {
    target: Target,
    /// The room stream's path.
    path: Arc<String>,
    /// Messages that will be posted.
    total: usize,
    /// The clock the bodies' timestamps count from.
    clock: Instant,
    stop: watch::Receiver<bool>,
    /// Subscribers that have received `total` distinct messages.
    complete: Arc<AtomicUsize>,
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct Tally {
    /// Deliveries of each message index.
    counts: Vec<u8>,
    latencies: Vec<Duration>,
    /// When (on the shared clock) the last message arrived.
    last_delivery: Option<Duration>,
    /// Why the stream ended before it was stopped.
    error: Option<String>,
}

/// Runs the scenario.
pub async fn run(gateway: &Gateway, args: &Args) -> anyhow::Result<Row> {
    let sdk = kapable_sdk::Client::new(&gateway.url, &gateway.token);
    let request = CreateRoomRequest { name: "fanout".into(), ..Default::default() };
    let room = sdk.comms().create_room(request).await?.room.id;
    let (stop, stop_rx) = watch::channel(false);
    let shared = Shared {
        target: Target::new(&gateway.url, &gateway.token)?,
        path: Arc::new(format!("/v1/rooms/{room}/stream")),
        total: (u64::from(args.rate) * args.duration) as usize,
        clock: Instant::now(),
        stop: stop_rx,
        complete: Arc::new(AtomicUsize::new(0)),
    };

    eprintln!("[{}] fanout: opening {} subscribers ...", gateway.label, args.subscribers);
    let opening = Instant::now();
    let (subscribers, connect_errors) = open_subscribers(&shared, args.subscribers).await;
    let connected = subscribers.len() - connect_errors.0 as usize;
    let connect_time = opening.elapsed();
    eprintln!(
        "[{}] fanout: {connected} connected in {:.1} s; posting {}/s for {} s ...",
        gateway.label,
        connect_time.as_secs_f64(),
        args.rate,
        args.duration
    );
    let first_post = shared.clock.elapsed();
    let posted = post_at_rate(gateway, room, args.rate, shared.total, shared.clock).await?;
    let drain_until = Instant::now() + Duration::from_secs(args.drain_secs);
    while shared.complete.load(Ordering::Relaxed) < connected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).context("stopping the subscribers")?;
    let mut tallies = Vec::with_capacity(connected);
    for subscriber in subscribers {
        tallies.push(subscriber.await?);
    }
    Ok(summarize(gateway, args, &posted, &tallies, first_post, connect_errors, connect_time))
}

/// Opens `count` subscribers, `BATCH` at a time; the connected ones and the failures.
async fn open_subscribers(
    shared: &Shared,
    count: usize,
) -> (Vec<JoinHandle<Tally>>, (u64, Option<String>)) {
    let mut handles = Vec::with_capacity(count);
    let (mut failed, mut first_error) = (0, None);
    for start in (0..count).step_by(BATCH) {
        let mut waiting = Vec::with_capacity(BATCH);
        for _ in start..(start + BATCH).min(count) {
            let (connected, signal) = oneshot::channel();
            handles.push(tokio::spawn(subscribe(shared.clone(), connected)));
            waiting.push(signal);
        }
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        for signal in waiting {
            let outcome = match tokio::time::timeout_at(deadline, signal).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err("the subscriber stopped before connecting".to_owned()),
                Err(_) => Err(format!("not connected within {CONNECT_TIMEOUT:?}")),
            };
            if let Err(error) = outcome {
                failed += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    (handles, (failed, first_error))
}

/// Follows the room until stopped, signalling `connected` on the first comment.
async fn subscribe(shared: Shared, connected: oneshot::Sender<Result<(), String>>) -> Tally {
    let mut tally = Tally { counts: vec![0; shared.total], ..Default::default() };
    // The sender is kept so that the connection stays up for as long as the stream is read.
    let (_sender, response) = match open_stream(&shared).await {
        Ok(opened) => opened,
        Err(error) => {
            let _ = connected.send(Err(error));
            return tally;
        }
    };
    let mut connected = Some(connected);
    let mut reader = SseReader::new(response.into_body().into_data_stream());
    let mut stop = shared.stop.clone();
    let mut distinct = 0;
    loop {
        let frame = tokio::select! {
            frame = reader.next_frame() => frame,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                tally.error = Some("the stream ended".to_owned());
                break;
            }
            Err(error) => {
                tally.error = Some(error);
                break;
            }
        };
        if frame.comment
            && let Some(connected) = connected.take()
        {
            let _ = connected.send(Ok(()));
        }
        if frame.event != "message" {
            continue;
        }
        let arrived = shared.clock.elapsed();
        let Some((index, sent)) = parse_body(&frame.data) else { continue };
        let Some(count) = tally.counts.get_mut(index) else { continue };
        *count = count.saturating_add(1);
        tally.latencies.push(arrived.saturating_sub(sent));
        tally.last_delivery = Some(arrived);
        if *count == 1 {
            distinct += 1;
            if distinct == shared.total {
                shared.complete.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    tally
}

/// Opens the room stream on a connection of its own (bare hyper, the lightest client there
/// is, so that a thousand of them leave the machine to the server).
async fn open_stream(
    shared: &Shared,
) -> Result<(load::Sender, hyper::Response<hyper::body::Incoming>), String> {
    let mut sender = load::connect(&shared.target).await.map_err(|e| format!("stream: {e}"))?;
    let request = shared.target.get(&shared.path);
    let response = sender.send_request(request).await.map_err(|e| format!("stream: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("stream answered {}", response.status()));
    }
    Ok((sender, response))
}

/// The index and send time a message's data carries in its body (`"body":"<index> <nanos>"`).
/// Found by its field name rather than by parsing the event: a full JSON parse per delivery
/// would make the subscribers cost more than the server.
fn parse_body(data: &str) -> Option<(usize, Duration)> {
    const FIELD: &str = "\"body\":\"";
    let start = data.find(FIELD)? + FIELD.len();
    let rest = &data[start..];
    let body = &rest[..rest.find('"')?];
    let (index, nanos) = body.split_once(' ')?;
    Some((index.parse().ok()?, Duration::from_nanos(nanos.parse().ok()?)))
}

/// Posts `total` messages at `rate` a second with the org token; which were acknowledged.
async fn post_at_rate(
    gateway: &Gateway,
    room: Uuid,
    rate: u32,
    total: usize,
    clock: Instant,
) -> anyhow::Result<Vec<bool>> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(32)
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = Arc::new(format!("{}/v1/rooms/{room}/messages", gateway.url));
    let token = Arc::new(gateway.token.clone());
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut posts = Vec::with_capacity(total);
    for index in 0..total {
        ticker.tick().await;
        let (http, url, token) = (http.clone(), Arc::clone(&url), Arc::clone(&token));
        posts.push(tokio::spawn(async move {
            let body = json!({ "body": format!("{index} {}", clock.elapsed().as_nanos()) });
            let request = http.post(url.as_str()).bearer_auth(token.as_str()).json(&body);
            expect_success(request).await
        }));
    }
    let mut acked = Vec::with_capacity(total);
    let mut first_error = None;
    for post in posts {
        let outcome = post.await?;
        acked.push(outcome.is_ok());
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    if let Some(error) = first_error {
        eprintln!("  fanout: a post failed: {error}");
    }
    Ok(acked)
}

/// The row: deliveries per second, latency, and completeness.
fn summarize(
    gateway: &Gateway,
    args: &Args,
    posted: &[bool],
    tallies: &[Tally],
    first_post: Duration,
    (connect_errors, connect_error): (u64, Option<String>),
    connect_time: Duration,
) -> Row {
    let acked = posted.iter().filter(|ok| **ok).count();
    let complete = tallies.iter().filter(|t| is_complete(t, posted)).count();
    let duplicates: u64 =
        tallies.iter().flat_map(|t| &t.counts).map(|c| u64::from(c.saturating_sub(1))).sum();
    let missing: u64 = tallies
        .iter()
        .map(|t| t.counts.iter().zip(posted).filter(|(c, ok)| **ok && **c == 0).count() as u64)
        .sum();
    let ended = tallies.iter().filter(|t| t.error.is_some()).count() as u64;
    let deliveries: usize = tallies.iter().map(|t| t.latencies.len()).sum();
    let last = tallies.iter().filter_map(|t| t.last_delivery).max().unwrap_or(first_post);
    let window = last.saturating_sub(first_post).max(Duration::from_millis(1));

    let throughput = deliveries as f64 / window.as_secs_f64();
    let mut row = Row::new(Scenario::Fanout.name(), gateway.label, throughput, "deliv/s");
    row.errors = connect_errors + (posted.len() - acked) as u64 + ended;
    row.latencies(tallies.iter().flat_map(|t| t.latencies.iter().copied()).collect(), Tail::Max);
    let subscribers = args.subscribers;
    row.value("subscribers", subscribers);
    row.value("complete_subscribers", complete);
    row.value("posts", posted.len());
    row.value("posts_acked", acked);
    row.value("deliveries", deliveries);
    row.value("missing", missing);
    row.value("duplicates", duplicates);
    row.value("connect_seconds", connect_time.as_secs_f64());
    row.note(format!("{complete}/{subscribers} complete"));
    row.note(format!("{acked}/{} posts acked", posted.len()));
    row.note(format!("{deliveries} deliveries, {missing} missing, {duplicates} dup"));
    row.note(format!("connect {:.1} s", connect_time.as_secs_f64()));
    if connect_errors > 0 || ended > 0 {
        let why = connect_error
            .or_else(|| tallies.iter().find_map(|t| t.error.clone()))
            .unwrap_or_default();
        row.extra("stream_errors", connect_errors + ended, format!("stream errors: {why}"));
    }
    row
}

/// Whether a subscriber got every acknowledged message exactly once (and nothing twice).
fn is_complete(tally: &Tally, posted: &[bool]) -> bool {
    tally.counts.len() == posted.len()
        && tally.counts.iter().zip(posted).all(|(c, ok)| if *ok { *c == 1 } else { *c <= 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_body_gives_its_index_and_send_time() {
        let data =
            r#"{"id":"m1","seq":4,"body":"17 123456789","kind":"text","sender":{"body":"x"}}"#;
        assert_eq!(parse_body(data), Some((17, Duration::from_nanos(123_456_789))));
        assert_eq!(parse_body(r#"{"body":"not numbers"}"#), None);
        assert_eq!(parse_body(r#"{"kind":"text"}"#), None);
    }
}
