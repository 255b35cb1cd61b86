//! `kapable-bench`: a load generator and benchmark for the gateway. It runs named scenarios
//! against a gateway in a separate process (so that the server's memory can be read from
//! `/proc/PID/status`), prints one table row per scenario and database, and can write the same
//! rows as a JSON array.
//!
//! | scenario | what it measures |
//! |---|---|
//! | `baseline` | `GET /healthz` from C clients: the ceiling of the HTTP stack |
//! | `post` | `POST /v1/rooms/{id}/messages` from C clients into R rooms; WAL size; acks vs `seq` |
//! | `mcp-post` | the same through MCP `tools/call` of `post_room_message` |
//! | `fanout` | S SSE subscribers of one room, P posts a second: delivery latency, completeness |
//! | `idle-streams` | N open SSE connections: the server's RSS per connection |
//!
//! ```sh
//! export CARGO_TARGET_DIR=/var/tmp/kapable-target
//! cargo build --release --bin kapable-comms -p kapable-comms
//! cargo build --release -p kapable-tools --bin kapable-bench
//! $CARGO_TARGET_DIR/release/kapable-bench             # everything, SQLite (+ Postgres if up)
//! $CARGO_TARGET_DIR/release/kapable-bench --database sqlite --duration 5 \
//!     --subscribers 200 --streams 2000 --json bench.json
//! $CARGO_TARGET_DIR/release/kapable-bench --database postgres --scenario post \
//!     --database-url postgres://postgres@127.0.0.1:5432/
//! $CARGO_TARGET_DIR/release/kapable-bench --compare tools/bench/reference.json   # regressions?
//! $CARGO_TARGET_DIR/release/kapable-bench --url http://127.0.0.1:8787 --token kap_... \
//!     --scenario baseline --scenario post                     # an already running gateway
//! ```
//!
//! Each scenario gets a fresh server and a fresh database (a SQLite file in its own directory,
//! or a new Postgres database dropped afterwards), so runs do not affect each other. The
//! server's log, and its `/metrics` when it serves one, stay in that directory. Extra server
//! flags pass through with `--server-arg=--flag --server-arg=value`.

mod fanout;
mod gateway;
mod idle;
mod load;
mod report;
mod requests;
mod sse;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};

use gateway::{Backend, Gateway, Launcher};
use report::Row;

/// Load generator and benchmark for kapable-comms.
#[derive(Debug, Parser)]
#[command(name = "kapable-bench", long_about = None)]
pub struct Args {
    /// Databases to run on; default: both when Postgres at `--database-url` answers, else
    /// sqlite.
    #[arg(long, value_enum)]
    database: Option<DatabaseChoice>,
    /// Scenarios to run (repeatable); default: all.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// Also write the rows as a JSON array to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Compare with an earlier run's JSON (such as `tools/bench/reference.json`); exits 1
    /// when a throughput fell or a p99 rose by more than 10%.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Seconds each timed phase runs.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent clients of `baseline`, `post` and `mcp-post`.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Rooms that `post` and `mcp-post` spread their clients over.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// SSE subscribers of `fanout`.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Messages posted per second in `fanout`.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Open SSE connections of `idle-streams`.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Seconds `fanout` waits after the last post for late deliveries.
    #[arg(long, default_value_t = 5)]
    drain_secs: u64,
    /// The Postgres server on which a fresh database is made per scenario.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/")]
    database_url: String,
    /// The gateway binary; default: `kapable-comms` next to this program.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// An extra argument for `kapable-comms serve` (repeatable, `--server-arg=--flag`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Benchmark an already running gateway at this URL instead (no RSS figures).
    #[arg(long, requires = "token")]
    url: Option<String>,
    /// The org app token (`kap_...`) of the gateway at `--url`.
    #[arg(long, requires = "url")]
    token: Option<String>,
    /// Where the per-scenario directories go; default: a new one under the temp directory.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

impl Args {
    /// The length of a timed phase.
    fn duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }
}

/// Which databases to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DatabaseChoice {
    Sqlite,
    Postgres,
    Both,
}

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Baseline,
    Post,
    McpPost,
    Fanout,
    IdleStreams,
}

impl Scenario {
    /// Its name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline",
            Scenario::Post => "post",
            Scenario::McpPost => "mcp-post",
            Scenario::Fanout => "fanout",
            Scenario::IdleStreams => "idle-streams",
        }
    }

    /// Whether it holds many streams open (and so needs the per-token stream limit lifted).
    fn holds_streams(self) -> bool {
        matches!(self, Scenario::Fanout | Scenario::IdleStreams)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_open_files();
    let mut scenarios = args.scenarios.clone();
    if scenarios.is_empty() {
        scenarios = Scenario::value_variants().to_vec();
    }
    scenarios.sort_by_key(|s| *s as u8);
    scenarios.dedup();
    let backends = backends(&args).await?;
    let launcher = match args.url {
        Some(_) => None,
        None => Some(Launcher::new(args.server_bin.clone(), args.server_args.clone())?),
    };
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("kapable-bench-{}", uuid::Uuid::now_v7())),
    };
    std::fs::create_dir_all(&work_dir).with_context(|| format!("creating {work_dir:?}"))?;
    eprintln!("kapable-bench: scratch directories under {}", work_dir.display());

    let mut rows = Vec::new();
    for backend in &backends {
        let mut baseline = None;
        for &scenario in &scenarios {
            let dir = work_dir.join(format!("{}-{}", backend.label(), scenario.name()));
            let mut row = run_scenario(&args, launcher.as_ref(), backend, scenario, dir).await;
            if scenario == Scenario::Baseline && row.errors == 0 {
                baseline = Some(row.throughput);
            }
            if matches!(scenario, Scenario::Post | Scenario::McpPost) {
                row.ratio_to_baseline = baseline.map(|b| row.throughput / b);
            }
            rows.push(row);
        }
    }
    report::print_table(&rows);
    if let Some(path) = &args.json {
        report::write_json(path, &rows)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.compare {
        let regressions = report::compare(path, &rows)?;
        if regressions > 0 {
            eprintln!("kapable-bench: {regressions} figure(s) worse by more than 10%");
            std::process::exit(1);
        }
    }
    Ok(())
}

/// Runs one scenario on a fresh gateway; a failure becomes a row that says why.
async fn run_scenario(
    args: &Args,
    launcher: Option<&Launcher>,
    backend: &Backend,
    scenario: Scenario,
    dir: PathBuf,
) -> Row {
    let label = backend.label();
    let streams = if scenario.holds_streams() { args.subscribers.max(args.streams) } else { 0 };
    let gateway = match Gateway::start(launcher, backend, dir, streams).await {
        Ok(gateway) => gateway,
        Err(error) => return Row::failed(scenario.name(), label, &error),
    };
    let outcome = match scenario {
        Scenario::Baseline => requests::baseline(&gateway, args).await,
        Scenario::Post => requests::post(&gateway, args).await,
        Scenario::McpPost => requests::mcp_post(&gateway, args).await,
        Scenario::Fanout => fanout::run(&gateway, args).await,
        Scenario::IdleStreams => idle::run(&gateway, args).await,
    };
    let mut row = outcome.unwrap_or_else(|error| Row::failed(scenario.name(), label, &error));
    if let Some(rss) = gateway.memory() {
        row.extra(
            "server_peak_rss_bytes",
            rss.peak,
            format!("peak RSS {}", report::bytes(rss.peak)),
        );
    }
    match gateway.scrape_metrics(scenario.name()).await {
        Ok(Some(path)) => eprintln!("  metrics saved to {}", path.display()),
        Ok(None) => eprintln!("  no /metrics on this server"),
        Err(error) => eprintln!("  /metrics: {error:#}"),
    }
    if let Err(error) = gateway.stop().await {
        eprintln!("  stopping the gateway: {error:#}");
    }
    row
}

/// The databases (or the running gateway) to benchmark, as the flags ask.
async fn backends(args: &Args) -> anyhow::Result<Vec<Backend>> {
    if let (Some(url), Some(token)) = (&args.url, &args.token) {
        let url = url.trim_end_matches('/').to_owned();
        return Ok(vec![Backend::External { url, token: token.clone() }]);
    }
    let postgres = || Backend::Postgres(args.database_url.clone());
    match args.database {
        Some(DatabaseChoice::Sqlite) => Ok(vec![Backend::Sqlite]),
        Some(choice) => {
            gateway::check_postgres(&args.database_url).await?;
            Ok(match choice {
                DatabaseChoice::Postgres => vec![postgres()],
                _ => vec![Backend::Sqlite, postgres()],
            })
        }
        None => match gateway::check_postgres(&args.database_url).await {
            Ok(()) => Ok(vec![Backend::Sqlite, postgres()]),
            Err(error) => {
                eprintln!("kapable-bench: Postgres not reachable ({error:#}); SQLite only");
                Ok(vec![Backend::Sqlite])
            }
        },
    }
}

/// Raises this process's open-files soft limit to the hard limit: the stream scenarios hold
/// thousands of sockets. The spawned server inherits it.
fn raise_open_files() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => eprintln!("kapable-bench: open-files limit {limit}"),
        Err(error) => eprintln!("kapable-bench: could not raise the open-files limit: {error}"),
    }
}
