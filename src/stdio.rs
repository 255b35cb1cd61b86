//! `mcp-stdio`: a bridge for MCP clients that only speak stdio. Each JSON-RPC message read
//! from stdin (one per line) is POSTed to the gateway's MCP endpoint; each answer is written
//! to stdout, one message per line. Requests run concurrently, since answers carry their ids.
//!
//! stdout carries the protocol alone: logs and diagnostics go to stderr.

use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};

use crate::config::StdioArgs;

/// Relays stdin to the endpoint and its answers to stdout until stdin closes.
pub async fn run(args: StdioArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(args.timeout_secs))
        .build()
        .context("building the HTTP client")?;
    let bridge = Arc::new(Bridge { http, args, session: Mutex::new(None) });
    let (answers, mut outgoing) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = outgoing.recv().await {
            stdout.write_all(line.as_bytes()).await?;
            stdout.write_all(b"\n").await?;
            stdout.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending = tokio::task::JoinSet::new();
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        if line.trim().is_empty() {
            continue;
        }
        let (bridge, answers) = (bridge.clone(), answers.clone());
        pending.spawn(async move {
            for answer in bridge.relay(&line).await {
                let _ = answers.send(answer);
            }
        });
        while pending.try_join_next().is_some() {}
    }
    // stdin closed: let the requests in flight answer, then stop.
    while pending.join_next().await.is_some() {}
    drop(answers);
    writer.await.context("writing stdout")?.context("writing stdout")?;
    Ok(())
}

struct Bridge {
    http: reqwest::Client,
    args: StdioArgs,
    /// The endpoint's session id, for a gateway that hands one out.
    session: Mutex<Option<String>>,
}

impl Bridge {
    /// POSTs one message; the messages to write back (none for a notification).
    async fn relay(&self, line: &str) -> Vec<String> {
        let id = serde_json::from_str::<Value>(line).ok().and_then(|m| m.get("id").cloned());
        match self.post(line).await {
            Ok(answers) => answers,
            Err(error) => {
                tracing::warn!("relaying to the MCP endpoint failed: {error:#}");
                // A request must get an answer, or the client waits forever.
                id.map(|id| failure(&id, &format!("{error:#}"))).into_iter().collect()
            }
        }
    }

    async fn post(&self, line: &str) -> anyhow::Result<Vec<String>> {
        let mut request = self
            .http
            .post(&self.args.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(line.to_owned());
        if let Some(token) = &self.args.token {
            request = request.bearer_auth(token);
        }
        if let Some(session) = self.session.lock().await.clone() {
            request = request.header("mcp-session-id", session);
        }
        let response = request.send().await.context("sending to the MCP endpoint")?;
        if let Some(session) = response.headers().get("mcp-session-id") {
            *self.session.lock().await = session.to_str().ok().map(str::to_owned);
        }
        let status = response.status();
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = response.text().await.context("reading the MCP endpoint's answer")?;
        if status == reqwest::StatusCode::ACCEPTED || body.trim().is_empty() {
            return Ok(Vec::new());
        }
        if event_stream {
            return Ok(sse_data(&body));
        }
        let message =
            serde_json::from_str::<Value>(&body).ok().filter(|m| m.get("jsonrpc").is_some());
        match message {
            Some(message) => Ok(vec![message.to_string()]),
            // Not JSON-RPC (a 401 with the gateway's error envelope, a proxy's page): say what.
            None => {
                let excerpt: String = body.chars().take(300).collect();
                anyhow::bail!("the endpoint answered {status}: {excerpt}")
            }
        }
    }
}

/// The JSON-RPC messages of an event-stream body: each event's `data`.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|data| data.strip_prefix(' ').unwrap_or(data))
                .collect();
            (!data.is_empty()).then(|| compact(&data.join("\n")))
        })
        .collect()
}

/// One line of JSON, whatever the endpoint's formatting.
fn compact(text: &str) -> String {
    serde_json::from_str::<Value>(text).map_or_else(|_| text.replace('\n', " "), |v| v.to_string())
}

/// A JSON-RPC error answer for request `id`.
fn failure(id: &Value, why: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": -32603, "message": format!("kapable-comms mcp-stdio: {why}") },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_stream_answers_become_one_line_each() {
        let body = "event: message\ndata: {\"jsonrpc\":\"2.0\",\n data: \"id\":1}\n\n: ping\n\n";
        let body = body.replace("\n data", "\ndata");
        assert_eq!(sse_data(&body), [r#"{"id":1,"jsonrpc":"2.0"}"#]);
    }

    #[test]
    fn a_request_that_fails_still_gets_an_answer_with_its_id() {
        let answer: Value = serde_json::from_str(&failure(&json!(7), "refused")).unwrap();
        assert_eq!(answer["id"], 7);
        assert_eq!(answer["error"]["code"], -32603);
    }
}
