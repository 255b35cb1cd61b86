//! Configuration: every setting is a flag and an environment variable, listed once here.
//!
//! `--help` prints this list; the README's configuration table mirrors it.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// The default database: a SQLite file under `./data`, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/comms.db";

/// kapable-comms: an MCP-first gateway for agent communication.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of `serve`, accepted here too so that a bare invocation can take them.
    #[command(flatten)]
    pub serve: Settings,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve(Box<Settings>),
    /// Operator commands: create orgs and list them.
    Admin {
        /// The database to act on.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The admin action.
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Bridge an MCP client that speaks only stdio to a gateway's MCP endpoint over HTTP.
    McpStdio(StdioArgs),
}

/// Where `mcp-stdio` relays to.
#[derive(Debug, Clone, Args)]
pub struct StdioArgs {
    /// The gateway's MCP endpoint, such as `https://comms.example.com/v1/mcp` (or with the
    /// key in the path, `.../v1/mcp/ak_...`, and no `--token`).
    #[arg(long, env = "KAPABLE_MCP_URL")]
    pub url: String,

    /// The agent key, participant token or app token, sent as `Authorization: Bearer`. Prefer
    /// the variable: a flag is visible to every user of the machine.
    #[arg(long, env = "KAPABLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

/// Operator actions.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an org and its first app token; prints `{"org_id": ..., "app_token": ...}`.
    CreateOrg {
        /// The org's unique name.
        name: String,
    },
    /// List the orgs, one JSON object per line.
    ListOrgs,
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH` (created when missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// Settings of the running gateway.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address and port to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,

    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Host names (or host:port) clients use to reach the gateway, comma-separated; MCP
    /// refuses other `Host` headers (DNS-rebinding protection). Loopback names always work.
    #[arg(long, env = "PUBLIC_HOST", value_delimiter = ',')]
    pub public_host: Vec<String>,

    /// Browser origins allowed to call the API (CORS), comma-separated, such as
    /// `https://dash.example.com`; none by default.
    #[arg(long, env = "CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// Seconds after its last heartbeat that an agent still counts as online in a room.
    #[arg(
        long,
        env = "PRESENCE_TTL_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(1..=86400)
    )]
    pub presence_ttl_secs: u32,

    /// Seconds events are kept for streams to resume from; older cursors get `cursor_expired`.
    #[arg(long, env = "EVENT_RETENTION_SECS", default_value_t = 7 * 24 * 3600)]
    pub event_retention_secs: u32,

    /// SMTP relay for outbound mail: `smtp://user:pass@host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465` (TLS), or `smtp://host:25` (plain, for local relays).
    /// Without it, mail is written as .eml files to `--outbox-dir`.
    #[arg(long, env = "SMTP_URL")]
    pub smtp_url: Option<String>,

    /// Where outbound mail is written when no SMTP relay is set.
    #[arg(long, env = "OUTBOX_DIR", default_value = "data/outbox")]
    pub outbox_dir: std::path::PathBuf,

    /// Most streams (SSE) one token may hold open at once on this instance; one more is 429.
    #[arg(
        long,
        env = "MAX_STREAMS_PER_TOKEN",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_streams_per_token: u32,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Slow clients and failed authentication.
    #[command(flatten)]
    pub limits: ClientLimits,

    /// Send limits and the anomaly detector's thresholds.
    #[command(flatten)]
    pub sending: SendPolicy,

    /// The Telegram bridge.
    #[command(flatten)]
    pub telegram: TelegramSettings,
}

/// How long a client may take to send its request, and how often it may fail to authenticate.
#[derive(Debug, Clone, Args)]
pub struct ClientLimits {
    /// Seconds a connection has to send a request's head (its line and headers), and the
    /// longest it may stay idle between requests; then it is closed.
    #[arg(
        long,
        env = "HEADER_TIMEOUT_SECS",
        default_value_t = ClientLimits::DEFAULT.header_timeout_secs,
        value_parser = clap::value_parser!(u32).range(1..=3600)
    )]
    pub header_timeout_secs: u32,

    /// Seconds a request has to send its whole body; then it is answered 408 and closed.
    #[arg(
        long,
        env = "BODY_TIMEOUT_SECS",
        default_value_t = ClientLimits::DEFAULT.body_timeout_secs,
        value_parser = clap::value_parser!(u32).range(1..=3600)
    )]
    pub body_timeout_secs: u32,

    /// Failed authentications (a token presented and refused) one client address may make in
    /// a minute; past them, its requests answer 429 until the minute ends.
    #[arg(
        long,
        env = "AUTH_FAILURES_PER_MINUTE",
        default_value_t = ClientLimits::DEFAULT.auth_failures_per_minute,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub auth_failures_per_minute: u32,

    /// Behind a proxy: the header it puts the client's address in (`X-Forwarded-For`); its
    /// last value is the client. Unset, the connection's peer is the client.
    #[arg(long, env = "CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
}

impl ClientLimits {
    /// The defaults, shared by the flags and [`Default`].
    pub const DEFAULT: ClientLimits = ClientLimits {
        header_timeout_secs: 30,
        body_timeout_secs: 60,
        auth_failures_per_minute: 20,
        client_ip_header: None,
    };
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The Telegram bridge: off without a bot token.
#[derive(Debug, Clone, Args)]
pub struct TelegramSettings {
    /// The bot's token from BotFather; turns the bridge on.
    #[arg(long = "telegram-bot-token", env = "TELEGRAM_BOT_TOKEN", hide_env_values = true)]
    pub bot_token: Option<String>,

    /// The Bot API server.
    #[arg(
        long = "telegram-api-url",
        env = "TELEGRAM_API_URL",
        default_value = TelegramSettings::PUBLIC_API,
    )]
    pub api_url: String,

    /// Receive updates by webhook at this public URL (ending in `/v1/telegram/webhook`)
    /// instead of long polling.
    #[arg(long = "telegram-webhook-url", env = "TELEGRAM_WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// The least time between two messages the bridge sends to one chat, in milliseconds
    /// (Telegram allows about one a second per chat).
    #[arg(
        long = "telegram-chat-interval-ms",
        env = "TELEGRAM_CHAT_INTERVAL_MS",
        default_value_t = 1000
    )]
    pub chat_interval_ms: u64,

    /// How long one `getUpdates` long poll waits for updates, in seconds.
    #[arg(
        long = "telegram-poll-timeout-secs",
        env = "TELEGRAM_POLL_TIMEOUT_SECS",
        default_value_t = 25
    )]
    pub poll_timeout_secs: u32,
}

impl TelegramSettings {
    /// Telegram's own Bot API server.
    pub const PUBLIC_API: &str = "https://api.telegram.org";
}

impl Default for TelegramSettings {
    fn default() -> Self {
        Self {
            bot_token: None,
            api_url: Self::PUBLIC_API.into(),
            webhook_url: None,
            chat_interval_ms: 1000,
            poll_timeout_secs: 25,
        }
    }
}

/// The org-wide send limits of every mailbox (a mailbox's quota override replaces them) and
/// the thresholds of the anomaly detector over the send audit.
#[derive(Debug, Clone, Args)]
pub struct SendPolicy {
    /// Sends a mailbox may have accepted in any 60 seconds, unless its quota says otherwise.
    #[arg(
        long = "send-per-minute",
        env = "SEND_PER_MINUTE",
        default_value_t = SendPolicy::DEFAULT.per_minute,
    )]
    pub per_minute: i64,

    /// Sends a mailbox may have accepted in any hour.
    #[arg(
        long = "send-per-hour",
        env = "SEND_PER_HOUR",
        default_value_t = SendPolicy::DEFAULT.per_hour,
    )]
    pub per_hour: i64,

    /// Sends a mailbox may have accepted in any 24 hours.
    #[arg(
        long = "send-per-day",
        env = "SEND_PER_DAY",
        default_value_t = SendPolicy::DEFAULT.per_day,
    )]
    pub per_day: i64,

    /// The window, in seconds, over which the anomaly rules count (60 to 3600).
    #[arg(
        long,
        env = "ANOMALY_WINDOW_SECS",
        default_value_t = SendPolicy::DEFAULT.anomaly_window_secs,
        value_parser = clap::value_parser!(u32).range(60..=3600)
    )]
    pub anomaly_window_secs: u32,

    /// `volume_spike`: sends in one window at least this many times the mailbox's average
    /// window over the previous 24 hours...
    #[arg(
        long = "anomaly-volume-factor",
        env = "ANOMALY_VOLUME_FACTOR",
        default_value_t = SendPolicy::DEFAULT.volume_factor,
    )]
    pub volume_factor: u32,

    /// ...and at least this many sends in the window.
    #[arg(
        long = "anomaly-volume-min",
        env = "ANOMALY_VOLUME_MIN",
        default_value_t = SendPolicy::DEFAULT.volume_min,
    )]
    pub volume_min: i64,

    /// `rate_limit_burst`: this many refused sends of one mailbox in one window.
    #[arg(
        long = "anomaly-limit-hits",
        env = "ANOMALY_LIMIT_HITS",
        default_value_t = SendPolicy::DEFAULT.limit_hits,
    )]
    pub limit_hits: i64,

    /// `failure_spike`: this many permanent delivery failures of one mailbox in one window.
    #[arg(
        long = "anomaly-failures",
        env = "ANOMALY_FAILURES",
        default_value_t = SendPolicy::DEFAULT.failures,
    )]
    pub failures: i64,

    /// Seconds a send claimed by an outbox worker stays reserved for it; a send whose worker
    /// died (a crash mid-delivery) is tried again once this has passed. Keep it above the
    /// longest delivery the relay takes, or a slow delivery is attempted twice.
    #[arg(
        long = "outbox-lease-secs",
        env = "OUTBOX_LEASE_SECS",
        default_value_t = SendPolicy::DEFAULT.outbox_lease_secs,
        value_parser = clap::value_parser!(u32).range(1..=3600)
    )]
    pub outbox_lease_secs: u32,
}

impl SendPolicy {
    /// The defaults, also those of the flags.
    pub const DEFAULT: SendPolicy = SendPolicy {
        per_minute: 60,
        per_hour: 1_000,
        per_day: 10_000,
        anomaly_window_secs: 300,
        volume_factor: 10,
        volume_min: 50,
        limit_hits: 10,
        failures: 5,
        outbox_lease_secs: 60,
    };
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Settings {
    /// The base URL people on this machine use, for the lines printed on first start.
    pub fn local_base_url(&self) -> String {
        if let Some(host) = self.public_host.first() {
            return format!("https://{host}");
        }
        let port = self.listen.port();
        match self.listen.ip() {
            ip if ip.is_unspecified() || ip.is_loopback() => format!("http://127.0.0.1:{port}"),
            ip => format!("http://{}", SocketAddr::new(ip, port)),
        }
    }
}
