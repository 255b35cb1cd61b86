//! The Telegram bridge against a fake Bot API server: linking by setup URL and `/start`, a
//! single-use token, relay both ways with names and without echo, revoke, `retry_after`
//! honoured, an outage that loses nothing, one poller for two instances, and webhook mode.

use std::time::Duration;

use kapable_comms::config::Settings;
use kapable_sdk::comms::types::*;
use kapable_tools::proxy::TcpProxy;
use kapable_tools::telegram::{BOT_USERNAME, Failure, FakeBotApi};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::on_both_databases;

const WITHIN: Duration = Duration::from_secs(20);
const ADA: (i64, &str, &str) = (7, "Ada", "Lovelace");

fn bot(api_url: String) -> impl FnOnce(&mut Settings) {
    move |settings| {
        settings.telegram.bot_token = Some("4242:test-token".into());
        settings.telegram.api_url = api_url;
        settings.telegram.chat_interval_ms = 0;
        settings.telegram.poll_timeout_secs = 1;
    }
}

/// A room with the org's agent in it, whose key posts.
async fn room(app: &TestApp) -> Room {
    let room = app.room(&format!("bridged-{}", Uuid::now_v7().simple())).await;
    app.add_to_room(room.id, app.org.agent_id).await;
    room
}

async fn post(app: &TestApp, room_id: Uuid, body: &str) {
    let request = PostRoomMessageRequest { body: body.into(), ..Default::default() };
    app.sdk(&app.org.agent_key).comms().post_room_message(room_id, request).await.unwrap();
}

/// Waits until the bridge knows its bot, which the setup URL needs.
async fn setup_url(app: &TestApp, room_id: Uuid) -> TelegramSetupUrl {
    let org = app.sdk(&app.org.token);
    for _ in 0..200 {
        match org.comms().telegram_setup_url(room_id).await {
            Ok(url) => return url,
            Err(error) if error.status() == Some(503) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("{error}"),
        }
    }
    panic!("the bridge never reached the fake Bot API");
}

async fn room_bodies(app: &TestApp, room_id: Uuid) -> Vec<RoomMessage> {
    let query = ListRoomMessagesQuery { after: Some("0".into()), ..Default::default() };
    let org = app.sdk(&app.org.token);
    org.comms().list_room_messages(room_id, query).await.unwrap().messages
}

async fn wait_for_room_message(app: &TestApp, room_id: Uuid, body: &str) -> RoomMessage {
    for _ in 0..400 {
        if let Some(found) = room_bodies(app, room_id).await.into_iter().find(|m| m.body == body) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("`{body}` never reached the room");
}

async fn without_a_bot_the_bridge_operations_say_so(app: TestApp) {
    let room = room(&app).await;
    let org = app.sdk(&app.org.token);
    let link = LinkTelegramRequest { chat_id: -100, ..Default::default() };
    let error = org.comms().link_telegram(room.id, link).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(409), Some("bridge_not_configured")));
    let error = org.comms().telegram_setup_url(room.id).await.unwrap_err();
    assert_eq!(error.code(), Some("bridge_not_configured"));
    assert!(org.comms().list_bridges(room.id).await.unwrap().bridges.is_empty());
}

async fn a_setup_link_links_one_chat_once_and_messages_cross_both_ways(app: TestApp) {
    let fake = FakeBotApi::start().await;
    let app = app.restart(bot(fake.url.clone())).await;
    let room = room(&app).await;
    let setup = setup_url(&app, room.id).await;
    let prefix = format!("https://t.me/{BOT_USERNAME}?startgroup=");
    let token = setup.url.strip_prefix(&prefix).expect("a startgroup link").to_owned();
    assert!(
        token.len() <= 64
            && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert_eq!(setup.private_url, format!("https://t.me/{BOT_USERNAME}?start={token}"));

    fake.user_says(-100, ADA, &format!("/start {token}"));
    let told = fake.wait_for_sent(1, WITHIN).await;
    assert_eq!(told[0].chat_id, -100);
    assert!(told[0].text.contains("linked to the room"), "{}", told[0].text);
    let org = app.sdk(&app.org.token);
    let bridges = org.comms().list_bridges(room.id).await.unwrap().bridges;
    assert_eq!((bridges.len(), bridges[0].chat_id), (1, -100));

    fake.user_says(-200, ADA, &format!("/start {token}"));
    let told = fake.wait_for_sent(2, WITHIN).await;
    assert_eq!(told[1].chat_id, -200);
    assert!(told[1].text.contains("already used"), "{}", told[1].text);
    assert_eq!(org.comms().list_bridges(room.id).await.unwrap().bridges.len(), 1);

    post(&app, room.id, "Deploying v2.1").await;
    let sent = fake.wait_for_sent(3, WITHIN).await;
    assert_eq!((sent[2].chat_id, sent[2].text.as_str()), (-100, "agent: Deploying v2.1"));

    fake.user_says(-100, ADA, "Looks good");
    let relayed = wait_for_room_message(&app, room.id, "Looks good").await;
    assert_eq!(
        (relayed.sender.kind.as_str(), relayed.sender.display_name.as_str()),
        ("telegram", "Ada Lovelace")
    );
    assert_eq!(relayed.metadata["telegram"]["from"]["id"], 7);
    assert_eq!(relayed.metadata["telegram"]["chat_id"], -100);
    assert_eq!(relayed.sender.participant_id, Some(bridges[0].participant_id));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        fake.sent().len(),
        3,
        "the chat's own message is not echoed back: {:?}",
        fake.sent()
    );

    org.comms().revoke_bridge(room.id, bridges[0].id).await.unwrap();
    post(&app, room.id, "after the revoke").await;
    fake.user_says(-100, ADA, "nobody hears this");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.sent().len(), 3, "{:?}", fake.sent());
    assert!(room_bodies(&app, room.id).await.iter().all(|m| m.body != "nobody hears this"));
    assert!(org.comms().list_bridges(room.id).await.unwrap().bridges.is_empty());
}

async fn telegrams_retry_after_is_waited_out(app: TestApp) {
    let fake = FakeBotApi::start().await;
    let app = app.restart(bot(fake.url.clone())).await;
    let room = room(&app).await;
    setup_url(&app, room.id).await;
    let org = app.sdk(&app.org.token);
    let link = LinkTelegramRequest { chat_id: -300, message_thread_id: Some(12) };
    let bridge = org.comms().link_telegram(room.id, link).await.unwrap();
    assert_eq!(bridge.message_thread_id, Some(12));

    fake.fail_next_sends(&[Failure::RetryAfter(1)]);
    post(&app, room.id, "slow down").await;
    let sent = fake.wait_for_sent(1, WITHIN).await;
    assert_eq!((sent[0].text.as_str(), sent[0].thread_id), ("agent: slow down", Some(12)));
    let waited = sent[0].at - fake.refused()[0];
    assert!(waited >= Duration::from_secs(1), "sent again after only {waited:?}");

    fake.user_says_in_topic(-300, 99, ADA, "another topic");
    fake.user_says_in_topic(-300, 12, ADA, "this topic");
    wait_for_room_message(&app, room.id, "this topic").await;
    assert!(room_bodies(&app, room.id).await.iter().all(|m| m.body != "another topic"));
}

async fn an_outage_of_telegram_loses_no_message(app: TestApp) {
    let fake = FakeBotApi::start().await;
    let proxy = TcpProxy::start(fake.url["http://".len()..].parse().unwrap()).await.unwrap();
    let app = app.restart(bot(format!("http://{}", proxy.addr))).await;
    let room = room(&app).await;
    setup_url(&app, room.id).await;
    let link = LinkTelegramRequest { chat_id: -400, ..Default::default() };
    app.sdk(&app.org.token).comms().link_telegram(room.id, link).await.unwrap();

    proxy.cut();
    fake.fail_next_sends(&[Failure::ServerError]);
    for body in ["one", "two", "three"] {
        post(&app, room.id, body).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(fake.sent().is_empty());
    proxy.restore();
    let sent = fake.wait_for_sent(3, WITHIN).await;
    let texts: Vec<&str> = sent.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["agent: one", "agent: two", "agent: three"], "in order, each once");
}

async fn two_instances_on_one_database_run_one_poller(app: TestApp) {
    let fake = FakeBotApi::start().await;
    let app = app.restart(bot(fake.url.clone())).await;
    let (_second, _stop) = app.second_instance_with(bot(fake.url.clone())).await;
    let room = room(&app).await;
    setup_url(&app, room.id).await;
    let link = LinkTelegramRequest { chat_id: -500, ..Default::default() };
    app.sdk(&app.org.token).comms().link_telegram(room.id, link).await.unwrap();

    for body in ["a", "b"] {
        post(&app, room.id, body).await;
    }
    fake.user_says(-500, ADA, "from the chat");
    wait_for_room_message(&app, room.id, "from the chat").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts: Vec<String> = fake.sent().into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["agent: a", "agent: b"], "relayed once, by one instance");
    assert_eq!(fake.overlapping_polls(), 0, "never two getUpdates at once");
    let from_chat = room_bodies(&app, room.id).await;
    assert_eq!(from_chat.iter().filter(|m| m.body == "from the chat").count(), 1);
}

async fn in_webhook_mode_only_updates_with_the_secret_are_taken(app: TestApp) {
    let fake = FakeBotApi::start().await;
    let hook = "https://comms.example.com/v1/telegram/webhook".to_owned();
    let api_url = fake.url.clone();
    let app = app
        .restart(move |settings| {
            bot(api_url)(settings);
            settings.telegram.webhook_url = Some(hook);
        })
        .await;
    let room = room(&app).await;
    let setup = setup_url(&app, room.id).await;
    let token = setup.private_url.rsplit_once("?start=").unwrap().1.to_owned();
    let mut webhook = None;
    for _ in 0..200 {
        webhook = fake.webhook();
        if webhook.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (url, secret) = webhook.expect("the bridge set its webhook");
    assert_eq!(url, "https://comms.example.com/v1/telegram/webhook");
    assert!(secret.len() >= 32 && secret.bytes().all(|b| b.is_ascii_alphanumeric()));

    let update = FakeBotApi::update_json(-600, 1, ADA, &format!("/start {token}"));
    let endpoint = format!("{}/v1/telegram/webhook", app.address);
    let refused = app.http.post(&endpoint).json(&update).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let forged =
        app.http.post(&endpoint).header("x-telegram-bot-api-secret-token", "guess").json(&update);
    assert_eq!(forged.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let org = app.sdk(&app.org.token);
    assert!(org.comms().list_bridges(room.id).await.unwrap().bridges.is_empty());

    let taken =
        app.http.post(&endpoint).header("x-telegram-bot-api-secret-token", &secret).json(&update);
    assert_eq!(taken.send().await.unwrap().status(), StatusCode::OK);
    let bridges = org.comms().list_bridges(room.id).await.unwrap().bridges;
    assert_eq!((bridges.len(), bridges[0].chat_id), (1, -600));
    let chat = FakeBotApi::update_json(-600, 2, ADA, "hello by webhook");
    let posted =
        app.http.post(&endpoint).header("x-telegram-bot-api-secret-token", &secret).json(&chat);
    assert_eq!(posted.send().await.unwrap().status(), StatusCode::OK);
    wait_for_room_message(&app, room.id, "hello by webhook").await;
    assert!(!fake.calls().contains(&"getupdates".to_owned()), "no polling in webhook mode");
}

on_both_databases!(
    without_a_bot_the_bridge_operations_say_so,
    a_setup_link_links_one_chat_once_and_messages_cross_both_ways,
    telegrams_retry_after_is_waited_out,
    an_outage_of_telegram_loses_no_message,
    two_instances_on_one_database_run_one_poller,
    in_webhook_mode_only_updates_with_the_secret_are_taken,
);
