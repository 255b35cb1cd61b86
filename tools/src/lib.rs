//! Shared pieces of the developer tools: starting gateways in process and summarising timings.

pub mod database;
pub mod proxy;
pub mod smtp;
pub mod telegram;

use std::time::Duration;

use kapable_comms::config::{DatabaseArgs, Settings};
use kapable_comms::state::App;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A gateway started by a tool, stopped when dropped.
#[derive(Debug)]
pub struct Instance {
    /// Its base URL.
    pub url: String,
    _stop: oneshot::Sender<()>,
}

/// Starts a gateway on a free loopback port, on the database at `database_url`.
pub async fn start(database_url: &str) -> anyhow::Result<Instance> {
    start_with(database_url, |_| {}).await
}

/// Like [`start`], with settings changed by `change`.
pub async fn start_with(
    database_url: &str,
    change: impl FnOnce(&mut Settings),
) -> anyhow::Result<Instance> {
    let store = kapable_comms::cli::open(database_url).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let listen = listener.local_addr()?;
    let mut settings = Settings {
        listen,
        database: DatabaseArgs { database_url: database_url.to_owned() },
        public_host: vec![],
        cors_origin: vec![],
        presence_ttl_secs: 60,
        event_retention_secs: 7 * 24 * 3600,
        smtp_url: None,
        outbox_dir: std::env::temp_dir().join("kapable-outbox"),
        max_body_bytes: 1024 * 1024,
        max_streams_per_token: 64,
        limits: Default::default(),
        sending: Default::default(),
        telegram: Default::default(),
    };
    change(&mut settings);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) =
            kapable_comms::server::serve(App::new(store, settings), listener, shutdown).await
        {
            eprintln!("the gateway stopped: {error:#}");
        }
    });
    Ok(Instance { url: format!("http://{listen}"), _stop: stop })
}

/// Median, 99th and 99.9th percentiles and maximum of a set of durations.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    /// The largest.
    pub max: Duration,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some(Summary {
            count: samples.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        })
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "{:>6} samples  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            self.count,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}
