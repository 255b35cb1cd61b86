//! The Telegram bridge's outbound half: rooms' messages relayed to their linked chats.
//!
//! The room's event log is the queue. A bridge's relay cursor moves only once Telegram took
//! the message, so an outage of Telegram, or of this instance, loses nothing; only the holder
//! of the bot's lease relays.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kapable_sdk::comms::types::RoomMessage;
use teloxide_core::errors::RequestError;
use teloxide_core::payloads::SendMessageSetters;
use teloxide_core::requests::Requester;
use teloxide_core::types::{ChatId, MessageId, ThreadId};
use tokio::sync::broadcast::error::TryRecvError;

use super::Telegram;
use crate::state::Ctx;
use crate::store::{BridgeRow, EventRow, Position, Scope};

/// Events read per bridge per relay pass.
const RELAY_BATCH: i64 = 100;

/// Relays rooms' messages to their chats while this instance holds the lease: after every
/// commit that may concern a room, and once a second for retries.
pub(super) async fn relay(ctx: &Ctx, telegram: &Telegram) {
    let mut wakes = ctx.store.bus().subscribe();
    let mut last_sent: HashMap<i64, Instant> = HashMap::new();
    loop {
        if telegram.leading.load(Ordering::SeqCst)
            && let Err(error) = relay_pass(ctx, telegram, &mut last_sent).await
        {
            tracing::warn!(error = format!("{error:#}"), "relaying to Telegram paused");
        }
        tokio::select! {
            _ = wakes.recv() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        // One pass serves every commit that happened meanwhile: under load, wakes come far
        // faster than one pass per wake could read.
        while !matches!(wakes.try_recv(), Err(TryRecvError::Empty | TryRecvError::Closed)) {}
    }
}

/// Sends every bridge's unrelayed messages, in order; a bridge whose send fails waits for the
/// next pass, its cursor unmoved.
async fn relay_pass(
    ctx: &Ctx,
    telegram: &Telegram,
    last_sent: &mut HashMap<i64, Instant>,
) -> anyhow::Result<()> {
    for bridge in ctx.store.live_bridges().await? {
        let cursor: Position = bridge.relay_cursor.parse().unwrap_or_default();
        let events =
            ctx.store.events_after(Scope::Room(bridge.room_id), cursor, RELAY_BATCH).await?;
        // The cursor is stored after each message Telegram took and once after the rest, not
        // after every event: a crash in between relays at most one message twice.
        let mut passed = None;
        for event in events {
            if let Some(text) = relay_text(&bridge, &event)? {
                // Revoked since the pass began: stop at once.
                if !ctx.store.bridge_is_live(bridge.id).await? {
                    break;
                }
                if let Err(error) = send(telegram, &bridge, &text, last_sent).await {
                    tracing::warn!(
                        %error,
                        bridge = %bridge.id,
                        "Telegram did not take a relayed message; retrying"
                    );
                    break;
                }
                ctx.store.set_relay_cursor(bridge.id, event.position()).await?;
                passed = None;
            } else {
                passed = Some(event.position());
            }
        }
        if let Some(position) = passed {
            ctx.store.set_relay_cursor(bridge.id, position).await?;
        }
    }
    Ok(())
}

/// What the chat is sent for a room event: its messages, but for those that came from the
/// chat itself.
fn relay_text(bridge: &BridgeRow, event: &EventRow) -> anyhow::Result<Option<String>> {
    if event.kind != "message" {
        return Ok(None);
    }
    let message: RoomMessage = serde_json::from_value(event.data().clone())?;
    let echo = message.sender.participant_id == Some(bridge.member_id);
    Ok((!echo).then(|| format!("{}: {}", message.sender.display_name, message.body)))
}

/// Sends one message to the bridge's chat, no sooner than the chat's interval after the last
/// one, waiting out Telegram's `retry_after` as often as it asks.
async fn send(
    telegram: &Telegram,
    bridge: &BridgeRow,
    text: &str,
    last_sent: &mut HashMap<i64, Instant>,
) -> Result<(), RequestError> {
    let interval = Duration::from_millis(telegram.settings.chat_interval_ms);
    loop {
        if let Some(last) = last_sent.get(&bridge.chat_id) {
            tokio::time::sleep_until((*last + interval).into()).await;
        }
        let mut request = telegram.bot.send_message(ChatId(bridge.chat_id), text);
        if let Some(thread) = bridge.thread_id.and_then(|t| i32::try_from(t).ok()) {
            request = request.message_thread_id(ThreadId(MessageId(thread)));
        }
        let sent = request.await;
        last_sent.insert(bridge.chat_id, Instant::now());
        match sent {
            Ok(_) => return Ok(()),
            Err(RequestError::RetryAfter(wait)) => {
                tracing::info!(
                    chat_id = bridge.chat_id,
                    "Telegram asked to slow down; waiting {:?}",
                    wait.duration()
                );
                tokio::time::sleep(wait.duration()).await;
            }
            Err(error) => return Err(error),
        }
    }
}
