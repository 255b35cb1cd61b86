//! Mailboxes, channels and inbound mail: the API document's examples, a corpus of real-world
//! shaped messages, duplicates, secrets, and who may read a mailbox.

use kapable_sdk::comms::types::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_databases;
use crate::sse;

/// Messages shaped like real mail, each with what must be read from it.
const CORPUS: &[(&str, &str, Option<&str>)] = &[
    (
        "plain ASCII",
        "From: Ada <ada@example.com>\r\nTo: support@agents.example.com\r\nSubject: Hello\r\n\
         Message-ID: <c1@example.com>\r\n\r\nJust checking in.\r\n",
        Some("Just checking in."),
    ),
    (
        "quoted-printable Latin-1",
        "From: b@example.com\r\nTo: support@agents.example.com\r\nSubject: =?ISO-8859-1?Q?R=E9sum=E9?=\r\n\
         Message-ID: <c2@example.com>\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me\r\n",
        Some("Café crème"),
    ),
    (
        "base64 UTF-8",
        "From: c@example.com\r\nTo: support@agents.example.com\r\nSubject: b64\r\n\
         Message-ID: <c3@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n8J+RiyBoZWxsbw==\r\n",
        Some("👋 hello"),
    ),
    (
        "Shift_JIS",
        "From: d@example.com\r\nTo: support@agents.example.com\r\nSubject: jp\r\n\
         Message-ID: <c4@example.com>\r\nContent-Type: text/plain; charset=shift_jis\r\n\
         Content-Transfer-Encoding: base64\r\n\r\ngrGC8YLJgr+CzQ==\r\n",
        Some("こんにちは"),
    ),
    (
        "HTML only, no Message-ID",
        "From: e@example.com\r\nTo: support@agents.example.com\r\nSubject: html\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<p>Only <b>HTML</b></p>\r\n",
        None,
    ),
    ("garbage", "\u{1}\u{2} this is not an email at all \u{7f}", None),
];

async fn mailbox_with_channel(app: &TestApp) -> (Mailbox, ChannelCreated) {
    let org = app.sdk(&app.org.token);
    let request = CreateMailboxRequest {
        agent_id: app.org.agent_id,
        address: "Support@Agents.Example.COM".into(),
        display_name: Some("Support Bot".into()),
    };
    let mailbox = org.comms().create_mailbox(request).await.unwrap();
    let request =
        CreateChannelRequest { mailbox_id: mailbox.id, kind: "email".into(), ..Default::default() };
    let channel = org.comms().create_channel(request).await.unwrap();
    (mailbox, channel)
}

async fn mailboxes_upsert_by_normalised_address_and_belong_to_one_org(app: TestApp) {
    let (mailbox, channel) = mailbox_with_channel(&app).await;
    assert_eq!(mailbox.address, "Support@agents.example.com", "the domain is lower-cased");
    assert!(channel.secret.starts_with("chs_"));
    assert_eq!(
        channel.channel.inbound_path.as_deref(),
        Some(format!("/v1/channels/{}/inbound", channel.channel.id).as_str())
    );

    let org = app.sdk(&app.org.token);
    let again =
        CreateMailboxRequest { address: "Support@AGENTS.example.com".into(), ..Default::default() };
    let (status, same) = app
        .call(
            Method::POST,
            "/v1/mailboxes",
            Some(&app.org.token),
            Some(serde_json::to_value(&again).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["id"], json!(mailbox.id));
    assert_eq!(same["agent_id"], json!(app.org.agent_id), "a nil agent_id keeps the owner");

    let other = app.other_org().await;
    let taken = app.sdk(&other.token).comms().create_mailbox(again).await.unwrap_err();
    assert_eq!(taken.status(), Some(409));

    let listed = org.comms().list_agent_mailboxes(app.org.agent_id).await.unwrap();
    assert_eq!(listed.mailboxes.iter().map(|m| m.id).collect::<Vec<_>>(), [mailbox.id]);
    let channels = org.comms().list_channels(mailbox.id).await.unwrap();
    assert!(!serde_json::to_string(&channels).unwrap().contains(&channel.secret));

    let bad = CreateMailboxRequest { address: "not an address".into(), ..Default::default() };
    let error = org.comms().create_mailbox(bad).await.unwrap_err();
    assert!(error.to_string().contains("address"), "{error}");
}

async fn a_corpus_of_real_world_mail_is_stored_and_nothing_is_dropped(app: TestApp) {
    let (mailbox, channel) = mailbox_with_channel(&app).await;
    let sender = app.sdk(&channel.secret);
    for (name, raw, text) in CORPUS {
        let stored = sender.comms().receive_email(channel.channel.id, raw.as_bytes()).await;
        let stored = stored.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((stored.direction.as_str(), stored.status.as_str()), ("inbound", "received"));
        if let Some(text) = text {
            assert_eq!(stored.body_text.as_deref().map(str::trim), Some(*text), "{name}");
        }
    }
    let org = app.sdk(&app.org.token);
    let listed = org
        .comms()
        .list_messages(mailbox.id, ListMessagesQuery { limit: Some(20), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.messages.len(), CORPUS.len());
    let garbage = &listed.messages[0];
    assert!(garbage.parse_warning.is_some(), "unreadable mail is kept with a warning");
    let html = &listed.messages[1];
    assert!(html.body_html.as_deref().unwrap().contains("<b>HTML</b>"));
    assert!(html.parse_warning.as_deref().unwrap().contains("Message-ID"));
}

async fn the_same_message_id_delivered_twice_is_one_message(app: TestApp) {
    let (mailbox, channel) = mailbox_with_channel(&app).await;
    let raw = CORPUS[0].1;
    let url = format!("{}/v1/channels/{}/inbound", app.address, channel.channel.id);
    let deliver = || {
        app.http
            .post(&url)
            .bearer_auth(&channel.secret)
            .header("content-type", "message/rfc822")
            .body(raw)
            .send()
    };
    assert_eq!(deliver().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(deliver().await.unwrap().status(), StatusCode::OK);
    let listed = app
        .sdk(&app.org.token)
        .comms()
        .list_messages(mailbox.id, ListMessagesQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.messages.len(), 1);
}

async fn only_the_right_channel_secret_delivers_mail(app: TestApp) {
    let (_, channel) = mailbox_with_channel(&app).await;
    let raw = CORPUS[0].1.as_bytes();
    let wrong = format!("chs_{}", "x".repeat(43));
    let error = app.sdk(&wrong).comms().receive_email(channel.channel.id, raw).await.unwrap_err();
    assert_eq!(error.status(), Some(401));
    let error =
        app.sdk(&app.org.token).comms().receive_email(channel.channel.id, raw).await.unwrap_err();
    assert_eq!(error.status(), Some(403), "an org token is not the channel's secret");

    let other = app.other_org().await;
    let theirs = app.sdk(&other.token);
    let request =
        CreateMailboxRequest { address: "theirs@example.org".into(), ..Default::default() };
    let their_box = theirs.comms().create_mailbox(request).await.unwrap();
    let request = CreateChannelRequest {
        mailbox_id: their_box.id,
        kind: "email".into(),
        ..Default::default()
    };
    let their_channel = theirs.comms().create_channel(request).await.unwrap();
    let error = app
        .sdk(&channel.secret)
        .comms()
        .receive_email(their_channel.channel.id, raw)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(404), "a secret works for its own channel only");

    let request = CreateChannelRequest {
        mailbox_id: their_box.id,
        kind: "webhook".into(),
        url: Some("https://hooks.example.org/in".into()),
    };
    let hook = theirs.comms().create_channel(request).await.unwrap();
    let error =
        app.sdk(&hook.secret).comms().receive_email(hook.channel.id, raw).await.unwrap_err();
    assert_eq!(error.status(), Some(409), "a webhook channel receives no mail");
}

async fn the_owner_agent_reads_its_mailbox_and_hears_of_new_mail(app: TestApp) {
    let (mailbox, channel) = mailbox_with_channel(&app).await;
    let agent = app.sdk(&app.org.agent_key);
    let stream_url = format!("{}/v1/agents/{}/stream", app.address, app.org.agent_id);
    let (status, reader) = sse::open(&app.http, &stream_url, Some(&app.org.agent_key), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = reader.unwrap();

    let stored = app
        .sdk(&channel.secret)
        .comms()
        .receive_email(channel.channel.id, CORPUS[0].1.as_bytes())
        .await
        .unwrap();
    let event = reader.next(std::time::Duration::from_secs(20)).await.unwrap();
    assert_eq!(event.event, "mail_message");
    assert_eq!(event.data["id"], json!(stored.id));

    let inbox = app
        .tool(&app.org.agent_key, "list_mailbox_messages", json!({ "mailbox_id": mailbox.id }))
        .await;
    assert_eq!(inbox["structuredContent"]["messages"][0]["subject"], "Hello", "{inbox}");
    let read = agent.comms().get_message(stored.id).await.unwrap();
    assert_eq!(read.from.as_deref(), Some("Ada <ada@example.com>"));
    assert_eq!(read.headers.unwrap()["subject"], "Hello", "get_message shows the headers");
    assert!(stored.headers.is_none(), "lists and events leave them out");

    let (_, stranger) = app.agent("stranger").await;
    let stranger = app.sdk(&stranger);
    assert_eq!(stranger.comms().get_message(stored.id).await.unwrap_err().status(), Some(404));
    let query = ListMessagesQuery::default();
    assert_eq!(
        stranger.comms().list_messages(mailbox.id, query).await.unwrap_err().status(),
        Some(404)
    );

    let future =
        ListMessagesQuery { since: Some("2999-01-01T00:00:00Z".into()), ..Default::default() };
    assert!(agent.comms().list_messages(mailbox.id, future).await.unwrap().messages.is_empty());
    let bad = ListMessagesQuery { since: Some("yesterday".into()), ..Default::default() };
    assert!(
        agent
            .comms()
            .list_messages(mailbox.id, bad)
            .await
            .unwrap_err()
            .to_string()
            .contains("since")
    );
}

async fn raw_mail_may_exceed_the_default_body_limit_up_to_its_own(app: TestApp) {
    let (_, channel) = mailbox_with_channel(&app).await;
    let url = format!("{}/v1/channels/{}/inbound", app.address, channel.channel.id);
    let deliver = |raw: String| {
        let request = app.http.post(&url).bearer_auth(&channel.secret);
        request.header("content-type", "message/rfc822").body(raw).send()
    };
    let head = "From: a@example.com\r\nSubject: big\r\nMessage-ID: <big@example.com>\r\n\r\n";
    let two_mib = format!("{head}{}\r\n", "x".repeat(2 * 1024 * 1024));
    assert_eq!(deliver(two_mib).await.unwrap().status(), StatusCode::CREATED);
    let too_big = format!("{head}{}\r\n", "x".repeat(26 * 1024 * 1024));
    let answer = deliver(too_big).await.unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Postgres refuses NUL in text and JSON columns; such mail was once answered with a 500.
async fn mail_with_nul_characters_is_stored_with_replacement_characters(app: TestApp) {
    let (_, channel) = mailbox_with_channel(&app).await;
    let sender = app.sdk(&channel.secret);
    let raw = b"From: a@example.com\r\nSubject: one\x00two\r\nX-Nul\x00: v\x00\r\n\
        Message-ID: <nul@example.com>\r\n\r\nbody\x00text\r\n";
    let stored = sender.comms().receive_email(channel.channel.id, raw).await.unwrap();
    assert_eq!(stored.subject.as_deref(), Some("one\u{fffd}two"));
    assert_eq!(stored.body_text.as_deref().map(str::trim), Some("body\u{fffd}text"));

    let garbage = sender.comms().receive_email(channel.channel.id, b"\x00\x01\x00").await.unwrap();
    assert!(garbage.parse_warning.is_some());
    assert_eq!(garbage.body_text.as_deref(), Some("\u{fffd}\u{1}\u{fffd}"));
}

#[expect(clippy::needless_update, reason = "the API document's examples, verbatim")]
async fn the_mailbox_examples_of_the_api_document_run_as_written(app: TestApp) {
    let client = app.sdk(&app.org.token);
    let outcome: Result<(), kapable_sdk::Error> = async {
        let agent = client
            .comms()
            .create_agent(CreateAgentRequest {
                name: "support-bot".into(),
                description: Some("Customer support automation".into()),
                ..Default::default()
            })
            .await?;

        let mailbox = client
            .comms()
            .create_mailbox(CreateMailboxRequest {
                agent_id: agent.id,
                address: "support@agents.kapable.run".into(),
                display_name: Some("Support Bot".into()),
                ..Default::default()
            })
            .await?;

        let channel = client
            .comms()
            .create_channel(CreateChannelRequest {
                mailbox_id: mailbox.id,
                kind: "email".into(),
                ..Default::default()
            })
            .await?;

        let messages = client
            .comms()
            .list_messages(
                mailbox.id,
                ListMessagesQuery {
                    limit: Some(20),
                    since: Some("2026-05-01T00:00:00Z".into()),
                    ..Default::default()
                },
            )
            .await?;

        let mailboxes = client.comms().list_agent_mailboxes(agent.id).await?;
        assert_eq!(mailboxes.mailboxes[0].id, mailbox.id);
        assert_eq!(channel.channel.mailbox_id, mailbox.id);
        assert!(messages.messages.is_empty());
        Ok(())
    }
    .await;
    outcome.expect("the examples run");
}

on_both_databases!(
    mailboxes_upsert_by_normalised_address_and_belong_to_one_org,
    a_corpus_of_real_world_mail_is_stored_and_nothing_is_dropped,
    the_same_message_id_delivered_twice_is_one_message,
    only_the_right_channel_secret_delivers_mail,
    the_owner_agent_reads_its_mailbox_and_hears_of_new_mail,
    the_mailbox_examples_of_the_api_document_run_as_written,
    raw_mail_may_exceed_the_default_body_limit_up_to_its_own,
    mail_with_nul_characters_is_stored_with_replacement_characters,
);
