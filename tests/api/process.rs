//! The gateway as a child process of the test, so that it can be killed for real (SIGKILL) and
//! started again on the same database and port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use crate::sse;

const BIN: &str = env!("CARGO_BIN_EXE_kapable-comms");

/// A `serve` process and what it takes to start it again.
pub struct Gateway {
    /// Its base URL, the same across restarts.
    pub url: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Where its log goes, one file for every start.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// A port that was free a moment ago, to serve on across restarts.
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    probe.local_addr().expect("a bound address").port()
}

impl Gateway {
    /// Starts `serve` on `database_url` with the extra flags `extra` and environment `env`,
    /// and waits until it is ready.
    pub async fn start(database_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let listen = format!("127.0.0.1:{}", free_port());
        let mut args: Vec<String> =
            ["serve", "--listen", &listen, "--database-url", database_url].map(String::from).into();
        args.extend(["--outbox-dir".into(), dir.path().join("outbox").display().to_string()]);
        args.extend(extra.iter().map(ToString::to_string));
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let log = dir.path().join("gateway.log");
        let mut gateway =
            Gateway { url: format!("http://{listen}"), args, env, child: None, log, _dir: dir };
        gateway.spawn().await;
        gateway
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file opens");
        let child = Command::new(BIN)
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary starts");
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Waits until `/readyz` answers 200; panics after a minute.
    pub async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            let ready = http.get(format!("{}/readyz", self.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the gateway never became ready; its log is {}", self.log.display());
    }

    /// Kills the process with SIGKILL and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL is delivered");
            child.wait().expect("the killed gateway is reaped");
        }
    }

    /// Kills the process and starts it again on the same database and port.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates an org with the binary's `admin create-org`; its app token.
pub fn create_org(database_url: &str) -> String {
    let created = Command::new(BIN)
        .args(["admin", "--database-url", database_url, "create-org", "resilience"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let printed: Value = serde_json::from_slice(&created.stdout).expect("one JSON object");
    printed["app_token"].as_str().expect("an app token").to_owned()
}

/// What the load needs: rooms, and a mailbox of a new agent.
pub struct Fixture {
    pub rooms: Vec<Uuid>,
    pub mailbox: Uuid,
}

/// Creates `rooms` rooms and a mailbox with the org token.
pub async fn fixture(url: &str, token: &str, rooms: usize) -> Fixture {
    use kapable_sdk::comms::types::*;
    let org = kapable_sdk::Client::new(url, token);
    let mut ids = Vec::new();
    for i in 0..rooms {
        let request = CreateRoomRequest { name: format!("load-{i}"), ..Default::default() };
        ids.push(org.comms().create_room(request).await.expect("a room").room.id);
    }
    let request = CreateAgentRequest { name: "mailer".into(), ..Default::default() };
    let agent = org.comms().create_agent(request).await.expect("an agent");
    let request = CreateMailboxRequest {
        agent_id: agent.id,
        address: "mailer@agents.example.com".into(),
        display_name: None,
    };
    let mailbox = org.comms().create_mailbox(request).await.expect("a mailbox");
    Fixture { rooms: ids, mailbox: mailbox.id }
}

/// The body of a send that the test can tell apart by its subject.
pub fn send_body(subject: &str) -> Value {
    json!({ "to": "ann@example.com", "subject": subject, "body_text": "x" })
}

/// Every message of a room, oldest first, read page by page.
pub async fn room_messages(url: &str, token: &str, room: Uuid) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut after = "0".to_owned();
    let mut all = Vec::new();
    loop {
        let page: Value = http
            .get(format!("{url}/v1/rooms/{room}/messages?after={after}&limit=200"))
            .bearer_auth(token)
            .send()
            .await
            .expect("the gateway answers")
            .json()
            .await
            .expect("a page");
        let messages = page["messages"].as_array().expect("messages").clone();
        if messages.is_empty() {
            return all;
        }
        after = page["next_cursor"].as_str().expect("a cursor").to_owned();
        all.extend(messages);
    }
}

/// The `Message-ID` header of a message as the SMTP server received it.
pub fn message_id(data: &str) -> Option<String> {
    let line = data.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:"))?;
    let value = line.split_once(':')?.1.trim();
    Some(value.trim_start_matches('<').trim_end_matches('>').to_owned())
}

/// Message events a stream delivered: (seq, message id), in the order they came.
pub type Streamed = Vec<(i64, String)>;

/// Follows a room's stream from its start, resuming with `Last-Event-ID` whenever the
/// connection breaks, until it has seen the seq `targets` names for the room. Returns every
/// message event seen: (seq, message id).
pub async fn follow(
    url: String,
    token: String,
    room: Uuid,
    targets: watch::Receiver<Option<HashMap<Uuid, i64>>>,
) -> Streamed {
    let http = reqwest::Client::new();
    let stream = format!("{url}/v1/rooms/{room}/stream");
    let mut cursor = "0".to_owned();
    let mut seen: Vec<(i64, String)> = Vec::new();
    let reached = |seen: &[(i64, String)]| {
        let target = targets.borrow().as_ref().map(|t| t[&room]);
        target.is_some_and(|target| seen.last().map_or(0, |s| s.0) >= target)
    };
    loop {
        if let Some(mut reader) = sse::try_open(&http, &stream, &token, &cursor).await {
            loop {
                if reached(&seen) {
                    return seen;
                }
                let next = tokio::time::timeout(Duration::from_millis(500), reader.next_event());
                match next.await {
                    Ok(Some(event)) => {
                        cursor = event.id.clone();
                        if event.event == "message" {
                            let seq = event.data["seq"].as_i64().expect("a seq");
                            let id = event.data["id"].as_str().expect("an id").to_owned();
                            seen.push((seq, id));
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
        }
        if reached(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
