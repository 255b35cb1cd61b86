//! The state every operation and adapter shares.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::bridge::telegram::Telegram;
use crate::config::Settings;
use crate::fanout::Hub;
use crate::http::guard::Throttle;
use crate::metrics::Metrics;
use crate::store::Store;

/// The shared state, cloned cheaply into every handler.
pub type Ctx = Arc<App>;

/// What the running gateway holds: its store, its settings and its authenticator.
#[derive(Debug)]
pub struct App {
    /// The database.
    pub store: Store,
    /// The settings it was started with.
    pub settings: Settings,
    /// Resolves tokens to callers.
    pub auth: Authenticator,
    /// Wakes the outbox worker when a send is accepted.
    pub outbox: tokio::sync::Notify,
    /// Wakes the webhook worker when an inbound message is queued for a webhook channel.
    pub webhooks: tokio::sync::Notify,
    /// The Telegram bridge, when a bot token is set.
    pub telegram: Option<Telegram>,
    /// The feeds that open streams share, and who holds how many streams.
    pub hub: Hub,
    /// What `/metrics` reports.
    pub metrics: Metrics,
    /// Failed authentications per client address.
    pub throttle: Throttle,
}

impl App {
    /// Wraps a connected, migrated store and the settings into the shared state.
    pub fn new(store: Store, settings: Settings) -> Ctx {
        let telegram = Telegram::from_settings(&settings.telegram).unwrap_or_else(|error| {
            tracing::error!("the Telegram bridge is off: {error:#}");
            None
        });
        Arc::new(Self {
            store,
            auth: Authenticator::default(),
            outbox: tokio::sync::Notify::new(),
            webhooks: tokio::sync::Notify::new(),
            telegram,
            hub: Hub::default(),
            metrics: Metrics::default(),
            throttle: Throttle::new(settings.limits.auth_failures_per_minute),
            settings,
        })
    }
}
