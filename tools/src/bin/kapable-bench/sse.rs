//! A lightweight server-sent events reader: frames are split on a blank line (`\n\n`) out of
//! a byte stream, and only the fields the bench needs are kept.

use bytes::{Buf, BytesMut};
use futures::{Stream, StreamExt};

/// One SSE frame.
#[derive(Debug, Default)]
pub struct Frame {
    /// The `event:` field; empty for a comment-only frame.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// Whether the frame held a comment (`: connected`, keep-alives).
    pub comment: bool,
}

/// Reads frames from a stream of byte chunks.
pub struct SseReader<S> {
    chunks: S,
    buffer: BytesMut,
    /// How much of `buffer` was searched for a frame end without finding one.
    searched: usize,
}

impl<S> std::fmt::Debug for SseReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseReader").field("buffered", &self.buffer.len()).finish()
    }
}

impl<S, B, E> SseReader<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    /// A reader of `chunks`.
    pub fn new(chunks: S) -> Self {
        SseReader { chunks, buffer: BytesMut::new(), searched: 0 }
    }

    /// The next frame; `None` when the stream ended.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        loop {
            if let Some(frame) = self.take_frame() {
                return Ok(Some(frame));
            }
            match self.chunks.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(chunk.as_ref()),
                Some(Err(error)) => return Err(error.to_string()),
                None => return Ok(None),
            }
        }
    }

    /// Cuts one complete frame off the buffer, if it holds one.
    fn take_frame(&mut self) -> Option<Frame> {
        let from = self.searched.saturating_sub(1);
        let Some(end) = self.buffer[from..].windows(2).position(|w| w == b"\n\n") else {
            self.searched = self.buffer.len();
            return None;
        };
        let end = from + end;
        let frame = parse(&String::from_utf8_lossy(&self.buffer[..end]));
        self.buffer.advance(end + 2);
        self.searched = 0;
        Some(frame)
    }
}

/// Parses the lines of one frame.
fn parse(text: &str) -> Frame {
    let mut frame = Frame::default();
    for line in text.lines() {
        if line.starts_with(':') {
            frame.comment = true;
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => frame.event = value.to_owned(),
            "data" => {
                if !frame.data.is_empty() {
                    frame.data.push('\n');
                }
                frame.data.push_str(value);
            }
            _ => {}
        }
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_frames_across_chunks() {
        let chunks = ["retry: 3000\n: conn", "ected\n\nid: 1\nevent: message\nda", "ta: {}\n\n"];
        let stream = futures::stream::iter(chunks.map(Ok::<_, String>));
        let mut reader = SseReader::new(stream);
        let first = reader.next_frame().await.unwrap().unwrap();
        assert!(first.comment && first.event.is_empty());
        let second = reader.next_frame().await.unwrap().unwrap();
        assert_eq!((second.event.as_str(), second.data.as_str()), ("message", "{}"));
        assert!(reader.next_frame().await.unwrap().is_none());
    }
}
