//! The outbox worker: claims due sends, delivers them through lettre, records the outcome.
//!
//! A relay's 4xx answer, a refused connection or a timeout defers the send with backoff (5 s,
//! doubling, at most an hour, twelve attempts in all); a 5xx answer fails it. Each attempt is
//! recorded in the outbox, on the message and in the send audit. The worker runs on every
//! instance: claims are leased, so instances never deliver the same row at once.

use std::time::Duration;

use anyhow::Context as _;
use chrono::Duration as Age;
use lettre::address::Envelope;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Settings;
use crate::state::Ctx;
use crate::store::{Delivery, OutboxRow, StoreError, now};

/// Rows claimed per round.
const BATCH: i64 = 16;
/// Attempts before a send is given up.
const MAX_ATTEMPTS: i64 = 12;
/// How often an idle worker looks for due rows (retries come due without a wake).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Where outbound mail goes.
#[derive(Debug, Clone)]
pub enum Transport {
    /// An SMTP relay (`SMTP_URL`).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// .eml files in a folder: the default, so every send is visible.
    File(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    /// The transport the settings name; an unusable `SMTP_URL` is an error naming it.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Transport> {
        if let Some(url) = &settings.smtp_url {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .context("SMTP_URL is not a usable SMTP URL (smtp://, smtps://, ?tls=required)")?
                .timeout(Some(Duration::from_secs(30)))
                .build();
            return Ok(Transport::Smtp(transport));
        }
        std::fs::create_dir_all(&settings.outbox_dir).with_context(|| {
            format!("creating the outbox folder {} (OUTBOX_DIR)", settings.outbox_dir.display())
        })?;
        Ok(Transport::File(AsyncFileTransport::new(&settings.outbox_dir)))
    }

    /// One delivery attempt of a claimed row.
    async fn deliver(&self, row: &OutboxRow) -> Delivery {
        let envelope = match envelope(row) {
            Ok(envelope) => envelope,
            Err(why) => return Delivery::Failed(why),
        };
        let outcome = match self {
            Transport::Smtp(smtp) => {
                smtp.send_raw(&envelope, &row.raw).await.map(drop).map_err(|e| {
                    let permanent = e.is_permanent();
                    (permanent, format!("{e}"))
                })
            }
            Transport::File(file) => file
                .send_raw(&envelope, &row.raw)
                .await
                .map(drop)
                .map_err(|e| (false, format!("{e}"))),
        };
        match outcome {
            Ok(()) => Delivery::Sent,
            Err((true, why)) => Delivery::Failed(why),
            Err((false, why)) if row.attempts + 1 >= MAX_ATTEMPTS => {
                Delivery::Failed(format!("gave up after {MAX_ATTEMPTS} attempts: {why}"))
            }
            Err((false, why)) => {
                let wait = 5i64.saturating_mul(1 << row.attempts.min(10)).min(3600);
                Delivery::Deferred(now() + Age::seconds(wait), why)
            }
        }
    }
}

fn envelope(row: &OutboxRow) -> Result<Envelope, String> {
    let from = row.envelope_from.parse().map_err(|e| format!("bad sender address: {e}"))?;
    let to = row
        .recipients
        .0
        .iter()
        .map(|r| r.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad recipient address: {e}"))?;
    Envelope::new(Some(from), to).map_err(|e| format!("no usable envelope: {e}"))
}

/// Delivers due sends until the process ends: woken by each accepted send, and once a second
/// for retries that come due.
pub async fn deliver_forever(ctx: Ctx, transport: Transport) {
    let lease = Age::from_std(lease_of(&ctx)).expect("a lease of at most an hour");
    loop {
        let claimed = match ctx.store.claim_outbox(BATCH, lease).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "the outbox could not be read; retrying");
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = ctx.outbox.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        // Recording an outcome is retried only while the lease (less a margin) still holds.
        let lease_ends = tokio::time::Instant::now() + lease_of(&ctx) * 9 / 10;
        // The batch goes out at once, over as many relay connections as the pool allows.
        let attempts = claimed.iter().map(|row| attempt(&ctx, &transport, row, lease_ends));
        futures::future::join_all(attempts).await;
    }
}

/// How long a claimed row stays reserved for this worker (`--outbox-lease-secs`).
fn lease_of(ctx: &Ctx) -> Duration {
    Duration::from_secs(u64::from(ctx.settings.sending.outbox_lease_secs))
}

/// Delivers one claimed row and records the outcome.
async fn attempt(
    ctx: &Ctx,
    transport: &Transport,
    row: &OutboxRow,
    lease_ends: tokio::time::Instant,
) {
    let delivery = transport.deliver(row).await;
    ctx.metrics.mail_outcome(match &delivery {
        Delivery::Sent => "delivered",
        Delivery::Deferred(..) => "deferred",
        Delivery::Failed(_) => "failed",
    });
    match &delivery {
        Delivery::Sent => tracing::debug!(mail_id = %row.mail_id, "mail delivered"),
        Delivery::Deferred(_, why) => tracing::info!(mail_id = %row.mail_id, %why, "mail deferred"),
        Delivery::Failed(why) => tracing::warn!(mail_id = %row.mail_id, %why, "mail failed"),
    }
    record(ctx, row, &delivery, lease_ends).await;
}

/// Records an attempt's outcome, retrying while the database is unreachable and the row's
/// lease lasts. Unrecorded, the lease expires and the message is sent again: a database that
/// is away for a moment should not cost a second copy of every mail in flight.
async fn record(ctx: &Ctx, row: &OutboxRow, delivery: &Delivery, give_up: tokio::time::Instant) {
    let mut pause = Duration::from_millis(100);
    loop {
        let error = match ctx.store.record_delivery(row, delivery, &ctx.settings.sending).await {
            Ok(()) => return,
            Err(error) => error,
        };
        let retryable = matches!(error, StoreError::Unavailable(_));
        if !retryable || tokio::time::Instant::now() + pause > give_up {
            tracing::error!(%error, mail_id = %row.mail_id, "recording a delivery failed");
            return;
        }
        tracing::warn!(%error, mail_id = %row.mail_id, "recording a delivery failed; retrying");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
