//! The gateway under test: a `kapable-comms serve` process started per scenario on a fresh
//! database (or an already running gateway given by `--url`), with what the bench reads from
//! it: its memory from `/proc/PID/status`, its SQLite WAL size and its `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kapable_tools::database::ScratchDatabase;
use sqlx::Connection as _;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The per-token stream limit flag the gateway may or may not have yet.
const STREAM_LIMIT_FLAG: &str = "--max-streams-per-token";
/// How long a spawned gateway has to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start gateways: the binary, the extra flags, and what its `serve --help` offers.
#[derive(Debug)]
pub struct Launcher {
    bin: PathBuf,
    extra: Vec<String>,
    has_stream_limit: bool,
}

impl Launcher {
    /// Finds the binary (default: `kapable-comms` next to this program) and reads its
    /// `serve --help` once.
    pub fn new(bin: Option<PathBuf>, extra: Vec<String>) -> anyhow::Result<Launcher> {
        let bin = match bin {
            Some(bin) => bin,
            None => std::env::current_exe()?.with_file_name("kapable-comms"),
        };
        let help = std::process::Command::new(&bin)
            .args(["serve", "--help"])
            .output()
            .with_context(|| {
                format!(
                    "running {} serve --help (build it with `cargo build --release --bin \
                     kapable-comms -p kapable-comms`, or pass --server-bin)",
                    bin.display()
                )
            })?;
        let has_stream_limit = String::from_utf8_lossy(&help.stdout).contains(STREAM_LIMIT_FLAG);
        eprintln!(
            "kapable-bench: server {} ({STREAM_LIMIT_FLAG} {})",
            bin.display(),
            if has_stream_limit { "supported" } else { "not supported" }
        );
        Ok(Launcher { bin, extra, has_stream_limit })
    }

    /// The flags of `serve` beyond listen, database and outbox, for a run holding `streams`.
    fn serve_flags(&self, streams: usize) -> Vec<String> {
        let mut flags = self.extra.clone();
        let given = flags.iter().any(|f| f.starts_with(STREAM_LIMIT_FLAG));
        if streams > 0 && self.has_stream_limit && !given {
            flags.extend([STREAM_LIMIT_FLAG.to_owned(), (streams + 1000).to_string()]);
        }
        flags
    }
}

/// Where a scenario's gateway comes from.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A spawned server on a SQLite file in the scenario's directory.
    Sqlite,
    /// A spawned server on a fresh database of this Postgres server.
    Postgres(String),
    /// A gateway that is already running.
    External { url: String, token: String },
}

impl Backend {
    /// Its name in the table.
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
            Backend::External { .. } => "external",
        }
    }
}

/// Fails unless the Postgres server at `url` accepts a connection within a few seconds.
pub async fn check_postgres(url: &str) -> anyhow::Result<()> {
    let connect = sqlx::PgConnection::connect(url);
    let connection = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .context("timed out")?
        .with_context(|| format!("connecting to {url}"))?;
    connection.close().await?;
    Ok(())
}

/// Resident memory of the server, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: now.
    pub now: u64,
    /// `VmHWM`: the peak so far.
    pub peak: u64,
}

/// A gateway the bench talks to, killed (and its database dropped) by [`Gateway::stop`].
#[derive(Debug)]
pub struct Gateway {
    /// Its base URL, such as `http://127.0.0.1:40123`.
    pub url: String,
    /// The org app token.
    pub token: String,
    /// `sqlite`, `postgres` or `external`.
    pub label: &'static str,
    /// The scenario's scratch directory.
    pub dir: PathBuf,
    child: Option<Child>,
    postgres: Option<ScratchDatabase>,
    sqlite: bool,
}

impl Gateway {
    /// Starts a gateway for one scenario in `dir` (or connects to the external one).
    /// `streams` is how many streams the scenario will hold open.
    pub async fn start(
        launcher: Option<&Launcher>,
        backend: &Backend,
        dir: PathBuf,
        streams: usize,
    ) -> anyhow::Result<Gateway> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
        let label = backend.label();
        let (database_url, postgres) = match backend {
            Backend::External { url, token } => {
                let (url, token) = (url.clone(), token.clone());
                return Ok(Gateway {
                    url,
                    token,
                    label,
                    dir,
                    child: None,
                    postgres: None,
                    sqlite: false,
                });
            }
            Backend::Sqlite => (format!("sqlite://{}/comms.db", dir.display()), None),
            Backend::Postgres(server) => {
                let scratch = ScratchDatabase::postgres_at(server).await?;
                (scratch.url.clone(), Some(scratch))
            }
        };
        let launcher = launcher.context("a spawned gateway needs a launcher")?;
        let token = create_org(&launcher.bin, &database_url).await?;
        let port = free_port()?;
        let child = spawn(launcher, &database_url, &dir, port, streams)?;
        let url = format!("http://127.0.0.1:{port}");
        let sqlite = matches!(backend, Backend::Sqlite);
        let mut gateway = Gateway { url, token, label, dir, child: Some(child), postgres, sqlite };
        gateway.wait_healthy().await?;
        Ok(gateway)
    }

    /// Waits until `/healthz` answers 200, failing if the process exits first.
    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        let health = format!("{}/healthz", self.url);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("the gateway exited with {status}:\n{}", self.log_tail());
            }
            if let Ok(response) = http.get(&health).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the gateway did not answer /healthz within {START_TIMEOUT:?}:\n{}", self.log_tail())
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's process id, when the bench started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The server's resident memory now and at its peak, when the bench started it.
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024)
        };
        Some(Memory { now: field("VmRSS:")?, peak: field("VmHWM:")? })
    }

    /// The size of the SQLite write-ahead log, on a spawned SQLite gateway.
    pub fn wal_bytes(&self) -> Option<u64> {
        if !self.sqlite {
            return None;
        }
        std::fs::metadata(self.dir.join("comms.db-wal")).ok().map(|m| m.len())
    }

    /// Saves `GET /metrics` to `DIR/metrics-SCENARIO.txt` when it answers 200.
    pub async fn scrape_metrics(&self, scenario: &str) -> anyhow::Result<Option<PathBuf>> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let response = http.get(format!("{}/metrics", self.url)).send().await?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let path = self.dir.join(format!("metrics-{scenario}.txt"));
        std::fs::write(&path, response.bytes().await?)?;
        Ok(Some(path))
    }

    /// Kills a spawned server, drops its Postgres database and deletes its SQLite files (the
    /// log and metrics stay).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        drop(self.postgres.take());
        if self.sqlite {
            for name in ["comms.db", "comms.db-wal", "comms.db-shm"] {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.join("outbox"));
        Ok(())
    }
}

/// Creates the org `bench` with `kapable-comms admin create-org`; its app token.
async fn create_org(bin: &Path, database_url: &str) -> anyhow::Result<String> {
    let output = Command::new(bin)
        .args(["admin", "--database-url", database_url, "create-org", "bench"])
        .output()
        .await
        .context("running kapable-comms admin create-org")?;
    if !output.status.success() {
        bail!("admin create-org failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{'));
    let created: serde_json::Value =
        serde_json::from_str(line.context("create-org printed no JSON")?)?;
    let token = created["app_token"].as_str().context("create-org printed no app_token")?;
    Ok(token.to_owned())
}

/// A loopback port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Starts `kapable-comms serve`, its output going to `DIR/server.log`.
fn spawn(
    launcher: &Launcher,
    database_url: &str,
    dir: &Path,
    port: u16,
    streams: usize,
) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join("server.log"))?;
    let listen = format!("127.0.0.1:{port}");
    let outbox = dir.join("outbox");
    let child = Command::new(&launcher.bin)
        .arg("serve")
        .args(["--listen", &listen, "--database-url", database_url])
        .arg("--outbox-dir")
        .arg(&outbox)
        .args(launcher.serve_flags(streams))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting kapable-comms serve")?;
    Ok(child)
}
