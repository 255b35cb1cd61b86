//! `idle-streams`: N SSE connections to one room, held open and idle, and what they cost the
//! server: its resident memory (`VmRSS`) before the first is opened and after all have received
//! their first bytes, divided by N.
//!
//! Connections are plain TCP sockets that write an HTTP/1.1 GET and read the response head and
//! the `: connected` comment, much cheaper for the bench than an HTTP client per stream. At most
//! a few hundred opens are in flight at once.

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use kapable_sdk::comms::types::CreateRoomRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::gateway::Gateway;
use crate::report::{self, Row, Tail};
use crate::{Args, Scenario};

/// Connections being opened at once.
const IN_FLIGHT: usize = 256;
/// How long one connection has to deliver its first bytes.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server is left to settle before its memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs the scenario.
pub async fn run(gateway: &Gateway, args: &Args) -> anyhow::Result<Row> {
    let sdk = kapable_sdk::Client::new(&gateway.url, &gateway.token);
    let request = CreateRoomRequest { name: "idle".into(), ..Default::default() };
    let room = sdk.comms().create_room(request).await?.room.id;
    let host = gateway.url.strip_prefix("http://").context("an http:// gateway URL")?.to_owned();
    let head = format!(
        "GET /v1/rooms/{room}/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Accept: text/event-stream\r\n\r\n",
        gateway.token
    );
    tokio::time::sleep(SETTLE).await;
    let before = gateway.memory();

    eprintln!("[{}] idle-streams: opening {} streams ...", gateway.label, args.streams);
    let started = Instant::now();
    let mut opens = futures::stream::iter(0..args.streams)
        .map(|_| open(&host, &head))
        .buffer_unordered(IN_FLIGHT);
    let (mut streams, mut latencies) = (Vec::with_capacity(args.streams), Vec::new());
    let (mut errors, mut first_error) = (0, None);
    while let Some(opened) = opens.next().await {
        match opened {
            Ok((stream, took)) => {
                streams.push(stream);
                latencies.push(took);
            }
            Err(error) => {
                errors += 1;
                first_error.get_or_insert(format!("{error:#}"));
            }
        }
    }
    drop(opens);
    let took = started.elapsed();
    eprintln!(
        "[{}] idle-streams: {} open in {:.1} s, {errors} failed",
        gateway.label,
        streams.len(),
        took.as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    let after = gateway.memory();
    let open_count = streams.len();
    drop(streams);

    let mut row = Row::new(
        Scenario::IdleStreams.name(),
        gateway.label,
        open_count as f64 / took.as_secs_f64(),
        "opens/s",
    );
    row.errors = errors;
    row.latencies(latencies, Tail::Max);
    row.extra("open_streams", open_count, format!("{open_count} open"));
    if let (Some(before), Some(after)) = (before, after) {
        let per = after.now.saturating_sub(before.now) / open_count.max(1) as u64;
        row.value("rss_before_bytes", before.now);
        row.value("rss_after_bytes", after.now);
        row.extra(
            "bytes_per_stream",
            per,
            format!(
                "RSS {} -> {}, {} per stream",
                report::bytes(before.now),
                report::bytes(after.now),
                report::bytes(per)
            ),
        );
    }
    if let Some(error) = first_error {
        eprintln!("  first error: {error}");
        row.extra("first_error", error.as_str(), format!("first error: {error}"));
    }
    Ok(row)
}

/// Opens one stream: connects, sends the GET and reads until the `connected` comment arrives.
/// The socket, and how long that took.
async fn open(host: &str, head: &str) -> anyhow::Result<(TcpStream, Duration)> {
    let started = Instant::now();
    let opening = async {
        let mut stream = TcpStream::connect(host).await.context("connect")?;
        stream.set_nodelay(true)?;
        stream.write_all(head.as_bytes()).await?;
        let mut buffer = Vec::with_capacity(512);
        let mut chunk = [0u8; 512];
        loop {
            let read = stream.read(&mut chunk).await?;
            anyhow::ensure!(read > 0, "closed after {} bytes", buffer.len());
            buffer.extend_from_slice(&chunk[..read]);
            check_status(&buffer)?;
            if buffer.windows(9).any(|w| w == b"connected") {
                return Ok(stream);
            }
        }
    };
    let stream = tokio::time::timeout(OPEN_TIMEOUT, opening).await.context("timed out")??;
    Ok((stream, started.elapsed()))
}

/// Fails on a complete response head whose status is not 200.
fn check_status(buffer: &[u8]) -> anyhow::Result<()> {
    let Some(line_end) = buffer.windows(2).position(|w| w == b"\r\n") else {
        return Ok(());
    };
    let line = String::from_utf8_lossy(&buffer[..line_end]);
    match line.split(' ').nth(1) {
        Some("200") | None => Ok(()),
        Some(_) => anyhow::bail!("{line}"),
    }
}
