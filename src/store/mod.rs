//! Storage: one set of SQL statements run on SQLite or Postgres, chosen by the database URL.
//!
//! Both backends accept `$1` placeholders, so each statement is written once and run on
//! whichever pool the store holds ([`on_pool!`]). Handlers never open transactions: they hand
//! their writes to a store method, which owns the transaction. That seam is where concurrent
//! writes can be batched into one commit without touching any handler.
//!
//! Every row carries its `org_id`, and every query that reads a tenant's rows filters by it.

mod agents;
mod batch;
mod bridges;
pub(crate) mod bus;
mod credentials;
mod error;
pub(crate) mod events;
mod invites;
mod mail;
mod members;
mod messages;
mod orgs;
mod outbox;
mod presence;
mod recall;
mod rooms;
pub(crate) mod sending;
mod tickets;
mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use agents::AgentRow;
pub use bridges::BridgeRow;
pub use bus::{Bus, Wake};
pub use credentials::{AgentKeyRow, AppTokenRow, Credential, NewCredential};
pub use error::StoreError;
pub use events::{EventRow, NewEvent, Position, Scope};
pub use invites::{InviteRow, JoinAs, Joined, NewInvite};
pub use mail::{ChannelRow, MailRow, MailboxRow, NewInbound};
pub use members::{MemberRow, NewMember};
pub use messages::{AnnotationRow, MessageRow, NewAnnotation, NewMessage, summarize};
pub use orgs::{NewOrg, OrgRow};
pub use outbox::{Acceptance, Delivery, Gate, IdempotencyRecord, NewSend, OutboxRow};
pub use presence::PresenceRow;
pub use rooms::{NewRoom, RoomRow};
pub use sending::AuditFilter;
pub use tickets::TicketRow;
pub use webhooks::{HookOutcome, WebhookJob};

/// The database behind the gateway: SQLite (the default) or Postgres.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    bus: Bus,
    /// The group commit of room messages; `None` in the store its lanes write with.
    batcher: Option<batch::Batcher>,
    counters: Arc<Counters>,
    /// Remembered rooms, and on SQLite credentials and memberships (see [`recall`]).
    recall: Arc<recall::Recall>,
    /// On SQLite, the queue of write transactions (see [`Store::write_turn`]).
    writers: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction's turn: the statement that opens it and, on SQLite, its place at the head
/// of the store's queue of writers, which it keeps until it is dropped.
pub(crate) struct WriteTurn<'a> {
    /// The statement that opens the transaction.
    pub begin: &'static str,
    _head: Option<tokio::sync::MutexGuard<'a, ()>>,
}

/// How long a SQLite writer waits for its turn before the database counts as unavailable: as
/// long as SQLite's own busy timeout.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the store counts as it goes, for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    batched: AtomicU64,
    events: AtomicU64,
}

/// The store's counts since the process started.
#[derive(Debug, Clone, Copy)]
pub struct StoreStats {
    /// Group commits of room messages.
    pub batches: u64,
    /// Posts those commits held.
    pub batched: u64,
    /// Events this process appended to the log.
    pub events: u64,
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same statement on whichever pool the store holds.
///
/// The body is compiled once per backend, so row types must decode from both.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The current time at the precision both backends keep (microseconds).
///
/// SQLite keeps times as RFC 3339 text ending in `+00:00` with 0, 3 or 6 fractional digits;
/// since `+` and `.` sort before every digit, comparing that text compares the times, so range
/// queries on times read the same on both backends.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Store {
    /// Connects to the database named by `url` (`sqlite://...` or `postgres://...`), creating a
    /// SQLite file and its folder when missing. Does not run migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::Postgres(connect_postgres(url).await?)
        } else if url.starts_with("sqlite:") {
            Db::Sqlite(connect_sqlite(url).await?)
        } else {
            anyhow::bail!(
                "DATABASE_URL must start with sqlite:// or postgres://, got `{}`",
                url.split(':').next().unwrap_or_default()
            );
        };
        // SQLite has one writer; Postgres commits a few batches at once.
        let lanes = match db {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => 4,
        };
        let recall = Arc::new(recall::Recall::new(matches!(db, Db::Sqlite(_))));
        let store = Self {
            db,
            bus: Bus::default(),
            batcher: None,
            counters: Arc::default(),
            recall,
            writers: Arc::default(),
        };
        let batcher = batch::Batcher::start(&store, lanes);
        Ok(Self { batcher: Some(batcher), ..store })
    }

    /// Brings the schema up to date with the migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.db {
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
        .context("running database migrations")
    }

    /// The backend's name, for logs and the readiness answer.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Whether the store is on Postgres (and announces commits with `NOTIFY`).
    pub fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// Waits for this process's turn to open a transaction that will write, and names the
    /// statement that opens it. SQLite takes its write lock up front (`IMMEDIATE`), or a
    /// transaction that reads and then writes fails when another writer commits in between;
    /// Postgres locks rows as it goes, and its writers need no turns.
    ///
    /// SQLite has one writer, and its busy handler retries a locked database after sleeps that
    /// grow to 100 ms, so a writer that has waited long keeps losing to those that arrive just as
    /// the lock is freed: behind the outbox's bursts of recordings, a post waited seconds. Here
    /// writers queue in the order they came (tokio's mutex is fair), and each waits only for
    /// those ahead of it. No transaction may wait for a turn while it holds one.
    pub(crate) async fn write_turn(&self) -> Result<WriteTurn<'_>, StoreError> {
        if self.is_postgres() {
            return Ok(WriteTurn { begin: "BEGIN", _head: None });
        }
        let head = tokio::time::timeout(WRITE_TURN_TIMEOUT, self.writers.lock())
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?;
        Ok(WriteTurn { begin: "BEGIN IMMEDIATE", _head: Some(head) })
    }

    /// Forgets every remembered credential and membership; every store method that revokes,
    /// deletes or changes one calls it once its change has committed.
    fn access_changed(&self) {
        self.recall.forget();
    }

    /// What the store has counted so far.
    pub fn stats(&self) -> StoreStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = &self.counters;
        StoreStats {
            batches: read(&counters.batches),
            batched: read(&counters.batched),
            events: read(&counters.events),
        }
    }

    /// Counts a group commit of `posts` posts.
    fn count_batch(&self, posts: usize) {
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters.batched.fetch_add(posts as u64, Ordering::Relaxed);
    }

    /// The pool's open connections and, of those, the idle ones.
    pub fn pool_use(&self) -> (u64, u64) {
        on_pool!(self, |pool| (u64::from(pool.size()), pool.num_idle() as u64))
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await);
    }
}

async fn connect_sqlite(url: &str) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| "parsing the SQLite DATABASE_URL")?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        // Bounds the WAL file between checkpoints so long write bursts do not grow it forever.
        .pragma("journal_size_limit", "67108864");
    let file = options.get_filename().to_path_buf();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("opening the SQLite database at {}", file.display()))
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the database folder {}", dir.display()))
}

async fn connect_postgres(url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url).context("parsing the Postgres DATABASE_URL")?;
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to Postgres (check DATABASE_URL and that the server is up)")
}
