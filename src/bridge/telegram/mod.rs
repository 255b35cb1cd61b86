//! The Telegram bridge: one bot relays between linked chats and rooms, both ways.
//!
//! Every instance may run the bridge, but only the holder of the bot's lease (a row in the
//! database, renewed every 10 s, lost after 30 s) polls Telegram and relays to it, so two
//! instances never poll one bot (which Telegram answers with 409 Conflict). Updates are read
//! from the offset stored with the lease, and a message from a chat is posted with an
//! idempotency key made of its chat and message ids, so a crash between posting and storing
//! the offset never posts twice. Messages from rooms are relayed by reading each bridged
//! room's event log after the bridge's stored cursor, which moves only once Telegram accepted
//! the message: the log is the durable queue, and an outage of Telegram loses nothing.
//! This module holds the lease, the polling and what comes from chats; [`relay`] sends to them.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Duration as Lease;
use rand::Rng as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use teloxide_core::Bot;
use teloxide_core::errors::{ApiError as TelegramError, RequestError};
use teloxide_core::payloads::{GetUpdatesSetters, SendMessageSetters, SetWebhookSetters};
use teloxide_core::requests::Requester;
use teloxide_core::types::{AllowedUpdate, ChatId, Message, Update, UpdateKind};
use uuid::Uuid;

mod relay;

use crate::config::TelegramSettings;
use crate::state::Ctx;
use crate::store::{BridgeRow, NewMessage};

/// How long a lease on polling the bot lasts without renewal.
const LEASE: Lease = Lease::seconds(30);
/// How often the lease is renewed (or tried for).
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// The longest pause after a failed call to Telegram.
const MAX_PAUSE: Duration = Duration::from_secs(30);
/// How long a setup token stays valid.
pub const SETUP_TOKEN_TTL: Lease = Lease::hours(1);

/// The bot as Telegram knows it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The bot's user id.
    pub id: i64,
    /// Its username, without `@`.
    pub username: String,
}

/// A configured bridge: the bot, and whether this instance holds its lease.
#[derive(Debug)]
pub struct Telegram {
    bot: Bot,
    settings: TelegramSettings,
    identity: OnceLock<Identity>,
    holder: String,
    leading: AtomicBool,
    offset: AtomicI64,
}

impl Telegram {
    /// The bridge the settings describe; `None` without a bot token.
    pub fn from_settings(settings: &TelegramSettings) -> anyhow::Result<Option<Telegram>> {
        let Some(token) = settings.bot_token.clone().filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        let api = reqwest::Url::parse(&settings.api_url)
            .with_context(|| format!("TELEGRAM_API_URL `{}` is not a URL", settings.api_url))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("building the Telegram HTTP client")?;
        Ok(Some(Telegram {
            bot: Bot::with_client(token, http).set_api_url(api),
            settings: settings.clone(),
            identity: OnceLock::new(),
            holder: Uuid::now_v7().to_string(),
            leading: AtomicBool::new(false),
            offset: AtomicI64::new(0),
        }))
    }

    /// The bot, once Telegram has answered `getMe`.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.get()
    }

    /// The secret Telegram sends with each webhook request: derived from the bot token, so
    /// every instance knows it without another setting, and nobody without the token does.
    pub fn webhook_secret(&self) -> String {
        let digest = Sha256::digest(format!("kapable-comms webhook {}", self.bot.token()));
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `given` is the webhook secret, compared in constant time.
    pub fn webhook_secret_matches(&self, given: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        self.webhook_secret().as_bytes().ct_eq(given).into()
    }
}

/// A new setup token: 43 characters of `[A-Za-z0-9]`, and its hash.
pub fn setup_token() -> (String, [u8; 32]) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let token: String =
        (0..43).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    let hash = Sha256::digest(token.as_bytes()).into();
    (token, hash)
}

/// Runs the bridge until the process ends.
pub async fn run(ctx: Ctx) {
    let Some(telegram) = ctx.telegram.as_ref() else {
        return;
    };
    let identity = identify(telegram).await;
    tracing::info!(bot = %identity.username, "the Telegram bridge is running");
    tokio::join!(
        keep_lease(&ctx, telegram, identity.id),
        poll(&ctx, telegram, identity.id),
        relay::relay(&ctx, telegram)
    );
}

/// Asks Telegram who the bot is until it answers.
async fn identify(telegram: &Telegram) -> Identity {
    let mut pause = Duration::from_secs(1);
    loop {
        match telegram.bot.get_me().await {
            Ok(me) => {
                let username = me.username.clone().unwrap_or_default();
                let identity = Identity { id: me.id.0 as i64, username };
                return telegram.identity.get_or_init(|| identity).clone();
            }
            Err(error) => {
                tracing::warn!(%error, "Telegram did not answer getMe; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// Takes and renews the bot's lease; on taking it, points Telegram at this bridge's way of
/// receiving updates (the webhook, or none for long polling).
async fn keep_lease(ctx: &Ctx, telegram: &Telegram, bot_id: i64) {
    // While Telegram does not answer, it is asked again after waits that double from 1 s up to
    // the renewal interval: the relay waits on it, but the log need not say so every second.
    let mut unreachable_for = Duration::ZERO;
    loop {
        let held = ctx.store.take_bot_lease(bot_id, &telegram.holder, LEASE).await;
        let was_leading = telegram.leading.load(Ordering::SeqCst);
        match held {
            Ok(Some(offset)) => {
                if !was_leading {
                    telegram.offset.store(offset, Ordering::SeqCst);
                    if !receive_updates(telegram).await {
                        let wait = unreachable_for.clamp(Duration::from_secs(1), RENEW_EVERY);
                        unreachable_for += wait;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    unreachable_for = Duration::ZERO;
                    tracing::info!("this instance now relays for the Telegram bot");
                    telegram.leading.store(true, Ordering::SeqCst);
                }
            }
            Ok(None) => telegram.leading.store(false, Ordering::SeqCst),
            Err(error) => {
                tracing::warn!(%error, "the Telegram lease could not be renewed; retrying");
                telegram.leading.store(false, Ordering::SeqCst);
                // The relay is paused until the lease is back: try again soon, not in 10 s.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        tokio::time::sleep(RENEW_EVERY).await;
    }
}

/// Sets or deletes the webhook as the settings ask; false when Telegram refused.
async fn receive_updates(telegram: &Telegram) -> bool {
    let done = match &telegram.settings.webhook_url {
        Some(url) => match reqwest::Url::parse(url) {
            Ok(url) => telegram
                .bot
                .set_webhook(url)
                .secret_token(telegram.webhook_secret())
                .allowed_updates([AllowedUpdate::Message])
                .await
                .map(drop),
            Err(error) => {
                tracing::error!(%error, "TELEGRAM_WEBHOOK_URL is not a URL");
                return false;
            }
        },
        None => telegram.bot.delete_webhook().await.map(drop),
    };
    if let Err(error) = &done {
        tracing::warn!(%error, "Telegram refused the webhook setting; retrying");
    }
    done.is_ok()
}

/// Long-polls `getUpdates` while this instance holds the lease (not in webhook mode).
async fn poll(ctx: &Ctx, telegram: &Telegram, bot_id: i64) {
    if telegram.settings.webhook_url.is_some() {
        return;
    }
    let mut pause = Duration::from_secs(1);
    loop {
        if !telegram.leading.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let offset = telegram.offset.load(Ordering::SeqCst);
        let asked = telegram
            .bot
            .get_updates()
            .offset(i32::try_from(offset).unwrap_or(i32::MAX))
            .timeout(telegram.settings.poll_timeout_secs)
            .allowed_updates([AllowedUpdate::Message])
            .await;
        let updates = match asked {
            Ok(updates) => updates,
            Err(RequestError::Api(TelegramError::TerminatedByOtherGetUpdates)) => {
                tracing::warn!(
                    "Telegram answered 409 Conflict: another process polls this bot with the \
                     same token (another deployment, or a webhook); retrying in 5 s"
                );
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
            Err(RequestError::RetryAfter(wait)) => {
                tokio::time::sleep(wait.duration()).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "getUpdates failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
                continue;
            }
        };
        pause = Duration::from_secs(1);
        for update in updates {
            let next = i64::from(update.id.0) + 1;
            if let Err(error) = handle_update(ctx, telegram, update).await {
                // Not acknowledged: the update comes again on the next poll.
                tracing::warn!(error = format!("{error:#}"), "a Telegram update failed; retrying");
                tokio::time::sleep(pause).await;
                break;
            }
            telegram.offset.store(next, Ordering::SeqCst);
            if let Err(error) = ctx.store.set_bot_offset(bot_id, next).await {
                tracing::warn!(%error, "the Telegram update offset could not be stored");
            }
        }
    }
}

/// Acts on one update: a `/start <token>` links its chat; a text message in a linked chat is
/// posted in the linked rooms. Nothing else from Telegram changes anything.
pub async fn handle_update(ctx: &Ctx, telegram: &Telegram, update: Update) -> anyhow::Result<()> {
    let UpdateKind::Message(message) = update.kind else {
        return Ok(());
    };
    let Some(text) = message.text() else {
        return Ok(());
    };
    let username = telegram.identity().map_or("", |i| i.username.as_str());
    if let Some(token) = start_token(text, username) {
        return link_chat(ctx, telegram, &message, token).await;
    }
    let chat_id = message.chat.id.0;
    let thread = message.thread_id.map(|t| i64::from(t.0.0));
    for bridge in ctx.store.chat_bridges(chat_id).await? {
        if bridge.thread_id.is_some() && bridge.thread_id != thread {
            continue;
        }
        ctx.store.post_message(from_chat(&bridge, &message, text)).await?;
    }
    Ok(())
}

/// The room message a chat message becomes.
fn from_chat(bridge: &BridgeRow, message: &Message, text: &str) -> NewMessage {
    let from = message.from.as_ref();
    let name = from.map_or_else(
        || message.chat.title().unwrap_or("Telegram").to_owned(),
        teloxide_core::types::User::full_name,
    );
    NewMessage {
        org_id: bridge.org_id,
        room_id: bridge.room_id,
        sender_kind: "telegram",
        sender_id: bridge.member_id,
        sender_member_id: Some(bridge.member_id),
        sender_agent_id: None,
        sender_name: name.clone(),
        body: text.to_owned(),
        kind: "text".into(),
        metadata: json!({
            "telegram": {
                "chat_id": message.chat.id.0,
                "message_id": message.id.0,
                "from": {
                    "name": name,
                    "id": from.map(|u| u.id.0),
                    "username": from.and_then(|u| u.username.clone()),
                },
            }
        }),
        reply_to: None,
        idempotency_key: Some(format!("telegram:{}:{}", message.chat.id.0, message.id.0)),
    }
}

/// The token of `/start <token>` (or `/start@<this bot> <token>`), if the text is one.
fn start_token<'t>(text: &'t str, username: &str) -> Option<&'t str> {
    let (command, token) = text.trim().split_once(char::is_whitespace)?;
    let addressed = match command.strip_prefix("/start")? {
        "" => true,
        rest => rest.strip_prefix('@').is_some_and(|name| name.eq_ignore_ascii_case(username)),
    };
    let token = token.trim();
    let well_formed = (1..=64).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (addressed && well_formed).then_some(token)
}

/// Spends a setup token on linking the message's chat, and tells the chat what happened.
async fn link_chat(
    ctx: &Ctx,
    telegram: &Telegram,
    message: &Message,
    token: &str,
) -> anyhow::Result<()> {
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let chat_id = message.chat.id.0;
    let thread = message.thread_id.map(|t| i64::from(t.0.0));
    let linked = ctx.store.link_by_setup_token(&hash, chat_id, thread).await?;
    let reply = match &linked {
        Some((_, room)) => {
            tracing::info!(chat_id, "a Telegram chat was linked to a room by a setup token");
            format!("This chat is now linked to the room “{room}”: messages are relayed both ways.")
        }
        None => {
            "This setup link is invalid, expired or already used; ask a room admin for a new one."
                .to_owned()
        }
    };
    let mut send = telegram.bot.send_message(ChatId(chat_id), reply);
    if let Some(thread) = message.thread_id {
        send = send.message_thread_id(thread);
    }
    if let Err(error) = send.await {
        tracing::warn!(%error, chat_id, "could not tell the chat about its link");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_commands_yield_their_token_only_when_addressed_and_well_formed() {
        assert_eq!(start_token("/start abc_DEF-123", "kapable_bot"), Some("abc_DEF-123"));
        assert_eq!(start_token("/start@Kapable_Bot abc", "kapable_bot"), Some("abc"));
        assert_eq!(start_token("/start@other_bot abc", "kapable_bot"), None);
        assert_eq!(start_token("/start", "kapable_bot"), None);
        assert_eq!(start_token("/started abc", "kapable_bot"), None);
        assert_eq!(start_token("/start a b", "kapable_bot"), None);
        assert_eq!(start_token(&format!("/start {}", "a".repeat(65)), "kapable_bot"), None);
        assert_eq!(start_token("hello /start abc", "kapable_bot"), None);
    }

    #[test]
    fn setup_tokens_fit_telegrams_start_parameter() {
        let (token, hash) = setup_token();
        assert!(token.len() <= 64 && token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(token.as_bytes())));
        assert_ne!(setup_token().0, token);
    }
}
