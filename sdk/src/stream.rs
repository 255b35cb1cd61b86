//! Following an SSE stream as an async `Stream` of typed events that resumes by itself.
//!
//! When the connection drops, or cannot be made again (the gateway restarting, a network cut),
//! the stream reconnects with `Last-Event-ID` set to the last event it yielded, pausing longer
//! after each failed try (up to 5 s), so the caller sees every event once and in order across
//! reconnects. An error the gateway answers (a revoked key, a room one is no longer in) ends
//! the stream with that error.

use std::time::Duration;

use frames::Frames;
use futures_util::stream::{BoxStream, Stream, StreamExt};

use crate::client::Client;
use crate::comms::types::StreamEvent;
use crate::error::Error;

/// How long to wait before reconnecting a dropped stream.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

struct Following {
    client: Client,
    path: String,
    last_event_id: Option<String>,
    body: Option<BoxStream<'static, reqwest::Result<bytes::Bytes>>>,
    frames: Frames,
    failed: bool,
}

/// Follows the stream at `path`, after `after` when given.
pub(crate) fn follow(
    client: Client,
    path: String,
    after: Option<String>,
) -> impl Stream<Item = Result<StreamEvent, Error>> + Send + 'static {
    let state = Following {
        client,
        path,
        last_event_id: after,
        body: None,
        frames: Frames::default(),
        failed: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.failed {
            return None;
        }
        match state.next_event().await {
            Ok(event) => Some((Ok(event), state)),
            Err(error) => {
                state.failed = true;
                Some((Err(error), state))
            }
        }
    })
}

impl Following {
    async fn next_event(&mut self) -> Result<StreamEvent, Error> {
        loop {
            if let Some(event) = self.frames.next_event() {
                if !event.id.is_empty() {
                    self.last_event_id = Some(event.id.clone());
                }
                return Ok(event);
            }
            let Some(body) = self.body.as_mut() else {
                self.connect().await?;
                continue;
            };
            match body.next().await {
                Some(Ok(chunk)) => self.frames.push(&chunk),
                // Dropped: reconnect where we were.
                Some(Err(_)) | None => {
                    self.body = None;
                    self.frames = Frames::default();
                    tokio::time::sleep(RECONNECT_AFTER).await;
                }
            }
        }
    }

    /// Opens the stream where it left off; retries while the gateway cannot be reached or is
    /// unavailable, and gives up on what it refused.
    async fn connect(&mut self) -> Result<(), Error> {
        let mut pause = RECONNECT_AFTER;
        loop {
            match self.client.open_stream(&self.path, self.last_event_id.as_deref()).await {
                Ok(response) => {
                    self.body = Some(response.bytes_stream().boxed());
                    return Ok(());
                }
                Err(error) if passing(&error) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RECONNECT_MAX);
                }
                Err(refused) => return Err(refused),
            }
        }
    }
}

/// Splitting a byte stream into SSE events.
/// Whether an error is worth waiting out: no answer at all, or a gateway (or the proxy in front
/// of it) that is briefly unavailable.
fn passing(error: &Error) -> bool {
    matches!(error, Error::Transport(_)) || matches!(error.status(), Some(502..=504))
}

mod frames {
    use crate::comms::types::StreamEvent;

    /// Text received but not yet complete as events.
    /// Bytes received and not yet cut into frames. Frames end at a blank line; a chunk may
    /// end anywhere, even inside a character, so text is decoded a whole frame at a time.
    #[derive(Debug, Default)]
    pub(super) struct Frames {
        buffer: Vec<u8>,
    }

    impl Frames {
        pub(super) fn push(&mut self, chunk: &[u8]) {
            self.buffer.extend_from_slice(chunk);
        }

        pub(super) fn next_event(&mut self) -> Option<StreamEvent> {
            while let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&String::from_utf8_lossy(&frame)) {
                    return Some(event);
                }
            }
            None
        }
    }

    fn parse(frame: &str) -> Option<StreamEvent> {
        let (mut id, mut event, mut data) = (String::new(), String::from("message"), String::new());
        for line in frame.lines() {
            match line.split_once(':') {
                Some(("id", value)) => id = value.trim_start().to_owned(),
                Some(("event", value)) => event = value.trim_start().to_owned(),
                Some(("data", value)) => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
                _ => {}
            }
        }
        if data.is_empty() {
            return None;
        }
        let data: serde_json::Value =
            serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data));
        let room_id = data.get("room_id").and_then(|v| v.as_str()).and_then(|v| v.parse().ok());
        Some(StreamEvent { id, event, room_id, data })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn frames_split_across_chunks_become_events_and_comments_are_skipped() {
            let mut frames = Frames::default();
            frames.push(b": connected\n\nretry: 3000\n\nid: 7\nevent: message\ndata: {\"bo");
            assert!(frames.next_event().is_none());
            frames.push(b"dy\":\"hi\"}\n\n");
            let event = frames.next_event().unwrap();
            assert_eq!((event.id.as_str(), event.event.as_str()), ("7", "message"));
            assert_eq!(event.data["body"], "hi");
            assert!(frames.next_event().is_none());
        }

        #[test]
        fn a_character_split_between_chunks_arrives_whole() {
            let mut frames = Frames::default();
            let frame = "id: 8\nevent: message\ndata: {\"body\":\"café ☕\"}\n\n".as_bytes();
            let cut = frame.len() - 6;
            frames.push(&frame[..cut]);
            assert!(frames.next_event().is_none());
            frames.push(&frame[cut..]);
            assert_eq!(frames.next_event().unwrap().data["body"], "café ☕");
        }
    }
}
