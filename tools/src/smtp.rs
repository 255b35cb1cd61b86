//! A small SMTP server for tests and benchmarks: a real listener on a free port that speaks
//! enough SMTP for lettre, answers the end of each message's DATA from a plan (then 250), and
//! records what it accepted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The message, dot-unstuffed.
    pub data: String,
}

/// A running test SMTP server.
#[derive(Clone)]
#[expect(missing_debug_implementations, reason = "holds only shared buffers")]
pub struct SmtpServer {
    /// `smtp://127.0.0.1:PORT`, for `SMTP_URL`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<&'static str>>>,
}

impl SmtpServer {
    /// Starts a server that answers each DATA with the next reply of `plan`, then `250 OK`.
    pub async fn start(plan: &[&'static str]) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, plan)
    }

    /// Starts a server on a given port (to come back where a stopped one was).
    pub async fn start_on(port: u16, plan: &[&'static str]) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        Self::serve(listener, plan)
    }

    fn serve(listener: TcpListener, plan: &[&'static str]) -> SmtpServer {
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let server = SmtpServer {
            url,
            received: Arc::default(),
            plan: Arc::new(Mutex::new(plan.iter().copied().collect())),
        };
        let handle = server.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(handle.clone().session(socket));
            }
        });
        server
    }

    /// What the server accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to `within` for `count` accepted messages.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        while self.received().len() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }

    async fn session(self, socket: TcpStream) {
        // Replies are small writes answering small reads: without this, delayed ACKs stall
        // every exchange by tens of milliseconds.
        let _ = socket.set_nodelay(true);
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let _ = write.write_all(b"220 test.local ESMTP\r\n").await;
        let (mut from, mut to) = (String::new(), Vec::new());
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250 test.local".to_owned()
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&line);
                to.clear();
                "250 OK".to_owned()
            } else if upper.starts_with("RCPT TO:") {
                to.push(address(&line));
                "250 OK".to_owned()
            } else if upper == "DATA" {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push_str("\r\n");
                }
                let reply = self.plan.lock().unwrap().pop_front().unwrap_or("250 OK queued");
                if reply.starts_with('2') {
                    let received = Received { from: from.clone(), to: to.clone(), data };
                    self.received.lock().unwrap().push(received);
                }
                reply.to_owned()
            } else if upper == "QUIT" {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                "250 OK".to_owned()
            };
            if write.write_all(format!("{reply}\r\n").as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end].to_owned()
}
