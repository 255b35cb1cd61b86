//! What the gateway counts, served at `GET /metrics` in the Prometheus (OpenMetrics) text format.
//!
//! Counters and histograms are updated where things happen: the HTTP layer counts requests by
//! route template and status (never by raw path, which would hold ids and tokens), streams count
//! the events they deliver, the outbox worker its delivery outcomes. Gauges (open streams,
//! feeds, outbox depth, database pool) are read when scraped, so they cost nothing in between.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::Ctx;
use crate::store::StoreStats;

/// The labels of a request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP method.
    pub method: String,
    /// The route template, such as `/v1/rooms/{room_id}/messages`.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// The labels of a route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The HTTP method.
    pub method: String,
    /// The route template.
    pub route: String,
}

/// The labels of a mail delivery attempt.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `delivered`, `deferred` or `failed`.
    pub outcome: &'static str,
}

/// The gateway's counters and histograms.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    delivered: Counter,
    mail: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let latency = Family::new_with_constructor(latency_buckets as fn() -> Histogram);
        Self {
            requests: Family::default(),
            latency,
            delivered: Counter::default(),
            mail: Family::default(),
        }
    }
}

/// A latency histogram from 100 µs to about 6.5 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-4, 2.0, 17))
}

impl Metrics {
    /// Counts one answered request to the route template `route` and how long it took.
    pub fn request(&self, method: &str, route: String, status: u16, took: Duration) {
        let labels = RouteLabels { method: method.to_owned(), route };
        self.latency.get_or_create(&labels).observe(took.as_secs_f64());
        let RouteLabels { method, route } = labels;
        self.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    }

    /// Counts events written to streams.
    pub fn delivered(&self, events: usize) {
        self.delivered.inc_by(events as u64);
    }

    /// Counts one mail delivery attempt's outcome.
    pub fn mail_outcome(&self, outcome: &'static str) {
        self.mail.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

/// The text of `GET /metrics`: everything counted so far and the gauges as they are now.
pub async fn render(ctx: &Ctx) -> String {
    let metrics = &ctx.metrics;
    let mut registry = Registry::with_prefix("kapable");
    registry.register("http_requests", "Requests answered", metrics.requests.clone());
    registry.register(
        "http_request_duration_seconds",
        "Time to answer a request (for a stream: to open it)",
        metrics.latency.clone(),
    );
    registry.register("stream_events", "Events written to streams", metrics.delivered.clone());
    registry.register("mail_attempts", "Mail delivery attempts by outcome", metrics.mail.clone());

    let gauge = |value: u64| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    let hub = &ctx.hub;
    registry.register("streams_open", "Open streams", gauge(hub.open_streams()));
    registry.register("stream_feeds", "Scopes with a shared reader", gauge(hub.feeds() as u64));
    let StoreStats { batches, batched, events } = ctx.store.stats();
    let counter = ConstCounter::new;
    registry.register("message_batches", "Group commits of room messages", counter(batches));
    registry.register("message_batch_posts", "Posts written by group commits", counter(batched));
    registry.register("events_published", "Events written to the log", counter(events));
    let (size, idle) = ctx.store.pool_use();
    registry.register("db_connections", "Open database connections", gauge(size));
    registry.register("db_connections_idle", "Idle database connections", gauge(idle));
    match ctx.store.outbox_depth().await {
        Ok(depth) => registry.register("outbox_queued", "Sends waiting for delivery", gauge(depth)),
        Err(error) => tracing::warn!(%error, "the outbox depth could not be read for /metrics"),
    }

    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}
