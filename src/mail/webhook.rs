//! The webhook worker: POSTs each inbound message to the mailbox's webhook channels, signed,
//! and retries with backoff until the receiver answers 2xx or the attempts run out.
//!
//! The signature is `Kapable-Signature: v1=<hex>`, the HMAC-SHA256 of
//! `<Kapable-Timestamp>.<body>` keyed with the channel's secret. A receiver recomputes it,
//! compares in constant time, and refuses timestamps far from its clock to stop replays.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use kapable_sdk::comms::types::{MailMessage, WebhookPayload};
use sha2::Sha256;

use crate::state::Ctx;
use crate::store::{HookOutcome, WebhookJob};

/// Deliveries claimed at once.
const BATCH: i64 = 32;
/// How often due retries are looked for when nothing wakes the worker.
const IDLE_POLL: StdDuration = StdDuration::from_secs(1);
/// How long a receiver has to answer.
pub const TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// Attempts before a delivery is given up: about 45 minutes of retries.
pub const MAX_ATTEMPTS: i64 = 12;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::minutes(15);

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("v1={hex}")
}

/// The wait before attempt `attempt + 1`, after `attempt` failed ones: 1 s, 2 s, 4 s, ...
/// up to 15 minutes.
pub fn backoff(attempt: i64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(u32::MAX).min(20);
    Duration::seconds(1_i64 << exponent).min(MAX_BACKOFF)
}

/// Delivers due webhook deliveries until the process ends: woken by each queued message, and
/// once a second for retries that come due.
pub async fn deliver_forever(ctx: Ctx) {
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "no HTTP client for webhooks; webhook channels stay queued");
            return;
        }
    };
    loop {
        let claimed = match ctx.store.claim_webhooks(BATCH).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "the webhook queue could not be read; retrying");
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = ctx.webhooks.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        futures::future::join_all(claimed.iter().map(|job| attempt(&ctx, &client, job))).await;
    }
}

/// Makes one attempt of a claimed delivery and records it.
async fn attempt(ctx: &Ctx, client: &reqwest::Client, job: &WebhookJob) {
    let outcome = match (&job.url, &job.signing_secret) {
        (Some(url), Some(secret)) => post(ctx, client, job, url, secret).await,
        _ => HookOutcome::Failed(None, "the channel was revoked".into()),
    };
    match &outcome {
        HookOutcome::Delivered(_) => tracing::debug!(delivery = %job.id, "webhook delivered"),
        HookOutcome::Retry(_, _, why) => {
            tracing::info!(delivery = %job.id, %why, "webhook deferred");
        }
        HookOutcome::Failed(_, why) => tracing::warn!(delivery = %job.id, %why, "webhook failed"),
    }
    // Unrecorded, the lease expires and the delivery is tried again.
    if let Err(error) = ctx.store.record_webhook_attempt(job.id, &outcome).await {
        tracing::error!(%error, delivery = %job.id, "recording a webhook attempt failed");
    }
}

async fn post(
    ctx: &Ctx,
    client: &reqwest::Client,
    job: &WebhookJob,
    url: &str,
    secret: &str,
) -> HookOutcome {
    let message = match ctx.store.mail_message(job.org_id, job.mail_id).await {
        Ok(Some(row)) => MailMessage::from(row),
        Ok(None) => return HookOutcome::Failed(None, "the message no longer exists".into()),
        Err(error) => return again(job, None, format!("reading the message: {error}")),
    };
    let payload = WebhookPayload {
        kind: "mail_message".into(),
        delivery_id: job.id,
        channel_id: job.channel_id,
        mailbox_id: job.mailbox_id,
        message,
    };
    let body = serde_json::to_vec(&payload).expect("wire types serialize");
    let timestamp = Utc::now().timestamp();
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("kapable-delivery", job.id.to_string())
        .header("kapable-timestamp", timestamp.to_string())
        .header("kapable-signature", sign(secret, timestamp, &body))
        .body(body);
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            HookOutcome::Delivered(response.status().as_u16())
        }
        Ok(response) => {
            let status = response.status().as_u16();
            again(job, Some(status), format!("the receiver answered {status}"))
        }
        Err(error) => again(job, None, format!("{}", error.without_url())),
    }
}

/// A retry after the backoff, or the end once the attempts are used up.
fn again(job: &WebhookJob, status: Option<u16>, why: String) -> HookOutcome {
    let made = job.attempts + 1;
    if made >= MAX_ATTEMPTS {
        return HookOutcome::Failed(status, format!("{why}; gave up after {made} attempts"));
    }
    HookOutcome::Retry(Utc::now() + backoff(made), status, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let signed = sign("chs_secret", 1_700_000_000, b"{}");
        assert!(signed.starts_with("v1=") && signed.len() == 3 + 64, "{signed}");
        assert_ne!(signed, sign("chs_secret", 1_700_000_001, b"{}"));
        assert_ne!(signed, sign("chs_secret", 1_700_000_000, b"{ }"));
        assert_ne!(signed, sign("chs_other", 1_700_000_000, b"{}"));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), Duration::seconds(1));
        assert_eq!(backoff(2), Duration::seconds(2));
        assert_eq!(backoff(5), Duration::seconds(16));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
