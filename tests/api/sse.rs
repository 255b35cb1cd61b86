//! A small server-sent events reader for the tests: frames split on blank lines, comments
//! skipped.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::StatusCode;
use serde_json::Value;

/// One event of a stream.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// An open stream.
pub struct SseReader {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

/// Opens `url` as a stream like [`open`], but a connection that fails is `None`, not a panic.
pub async fn try_open(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    last_event_id: &str,
) -> Option<SseReader> {
    let request = http
        .get(url)
        .header("accept", "text/event-stream")
        .bearer_auth(token)
        .header("last-event-id", last_event_id);
    let response = request.send().await.ok().filter(|r| r.status() == StatusCode::OK)?;
    Some(SseReader { body: response.bytes_stream().boxed(), buffer: String::new() })
}

/// Opens `url` as a stream; the status and, when it is 200, the reader.
pub async fn open(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    last_event_id: Option<&str>,
) -> (StatusCode, Option<SseReader>) {
    let mut request = http.get(url).header("accept", "text/event-stream");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    if status != StatusCode::OK {
        return (status, None);
    }
    let reader = SseReader { body: response.bytes_stream().boxed(), buffer: String::new() };
    (status, Some(reader))
}

impl SseReader {
    /// The next event, or `None` when the stream ended. Panics after `within` without one, so
    /// that a broken stream fails its test instead of hanging it.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        tokio::time::timeout(within, self.next_event())
            .await
            .expect("an event within the time limit")
    }

    /// The next event, or `None` when the stream ended or broke; waits as long as it takes.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&frame) {
                    return Some(event);
                }
                continue;
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn parse(frame: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (String::new(), String::from("message"), String::new());
    for line in frame.lines() {
        match line.split_once(':') {
            Some(("", _)) | None => {}
            Some(("id", value)) => id = value.trim_start().to_owned(),
            Some(("event", value)) => event = value.trim_start().to_owned(),
            Some(("data", value)) => data.push_str(value.trim_start()),
            Some(_) => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    Some(SseEvent { id, event, data: serde_json::from_str(&data).unwrap_or(Value::String(data)) })
}
