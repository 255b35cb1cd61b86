//! Outbound mail against a real SMTP listener: content and recipients, a 4xx then success
//! (one copy), a 5xx (failed), a relay that is down until after a restart (one copy),
//! idempotency, and the reply an agent sends over MCP, threaded to the mail it answers.

use std::time::Duration;

use kapable_sdk::comms::types::*;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::on_both_databases;
use kapable_tools::smtp::SmtpServer;

const WITHIN: Duration = Duration::from_secs(30);

async fn mailbox(app: &TestApp) -> Mailbox {
    let request = CreateMailboxRequest {
        agent_id: app.org.agent_id,
        address: format!("support-{}@agents.example.com", Uuid::now_v7().simple()),
        display_name: Some("Support Bot".into()),
    };
    app.sdk(&app.org.token).comms().create_mailbox(request).await.unwrap()
}

/// Polls the message until its status is no longer `queued`.
async fn settled(app: &TestApp, id: Uuid) -> MailMessage {
    let org = app.sdk(&app.org.token);
    for _ in 0..600 {
        let message = org.comms().get_message(id).await.unwrap();
        if message.status != "queued" {
            return message;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the send never settled");
}

async fn a_send_arrives_with_its_headers_and_every_recipient(app: TestApp) {
    let smtp = SmtpServer::start(&[]).await;
    let app = app.with_smtp(&smtp.url).await;
    let mailbox = mailbox(&app).await;
    let request = SendEmailRequest {
        to: "Ann <ann@example.com>, bob@example.com".into(),
        cc: Some("cat@example.com".into()),
        bcc: Some("hidden@example.com".into()),
        subject: "Your support ticket update".into(),
        body_text: Some("Resolved.".into()),
        body_html: Some("<p>Your issue has been resolved.</p>".into()),
        from: Some(format!("Support Team <{}>", mailbox.address)),
        ..Default::default()
    };
    let sent = app.sdk(&app.org.agent_key).comms().send_email(mailbox.id, request).await.unwrap();
    assert_eq!(sent.status, "queued");

    let received = smtp.wait_for(1, WITHIN).await;
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.from, mailbox.address);
    let mut to = mail.to.clone();
    to.sort();
    assert_eq!(to, ["ann@example.com", "bob@example.com", "cat@example.com", "hidden@example.com"]);
    assert!(mail.data.contains(&format!("Message-ID: <{}>", sent.message_id)), "{}", mail.data);
    assert!(mail.data.contains("Subject: Your support ticket update"));
    assert!(
        mail.data.contains(&format!("From: \"Support Team\" <{}>", mailbox.address))
            || mail.data.contains(&format!("From: Support Team <{}>", mailbox.address)),
        "{}",
        mail.data
    );
    assert!(!mail.data.to_ascii_lowercase().contains("bcc:"), "Bcc appears in no header");
    assert!(mail.data.contains("<p>Your issue has been resolved.</p>"));
    assert_eq!(settled(&app, sent.id).await.status, "sent");
}

async fn a_relay_that_answers_4xx_then_accepts_gets_exactly_one_copy(app: TestApp) {
    let smtp = SmtpServer::start(&["451 4.3.0 try again later"]).await;
    let app = app.with_smtp(&smtp.url).await;
    let mailbox = mailbox(&app).await;
    let request = SendEmailRequest {
        to: "ann@example.com".into(),
        subject: "retry".into(),
        body_text: Some("x".into()),
        ..Default::default()
    };
    let sent = app.sdk(&app.org.token).comms().send_email(mailbox.id, request).await.unwrap();
    assert_eq!(settled(&app, sent.id).await.status, "sent");
    assert_eq!(smtp.received().len(), 1, "the deferred attempt left no copy");
}

async fn a_relay_that_answers_5xx_fails_the_send(app: TestApp) {
    let smtp = SmtpServer::start(&["550 5.1.1 no such user"]).await;
    let app = app.with_smtp(&smtp.url).await;
    let mailbox = mailbox(&app).await;
    let request = SendEmailRequest {
        to: "nobody@example.com".into(),
        subject: "x".into(),
        body_text: Some("x".into()),
        ..Default::default()
    };
    let sent = app.sdk(&app.org.token).comms().send_email(mailbox.id, request).await.unwrap();
    assert_eq!(settled(&app, sent.id).await.status, "failed");
    assert!(smtp.received().is_empty());
}

async fn a_send_accepted_while_the_relay_is_down_is_delivered_once_after_a_restart(app: TestApp) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let app = app.with_smtp(&format!("smtp://127.0.0.1:{port}")).await;
    let mailbox = mailbox(&app).await;
    let request = SendEmailRequest {
        to: "ann@example.com".into(),
        subject: "later".into(),
        body_text: Some("x".into()),
        ..Default::default()
    };
    let sent = app.sdk(&app.org.token).comms().send_email(mailbox.id, request).await.unwrap();
    // Let the first attempt fail against the closed port (a restart in the middle of an attempt
    // would leave its 60 s lease to expire first, which the wait below also covers).
    tokio::time::sleep(Duration::from_secs(1)).await;

    let smtp = SmtpServer::start_on(port, &[]).await;
    let app = app.with_smtp(&smtp.url).await;
    let received = smtp.wait_for(1, Duration::from_secs(90)).await;
    assert_eq!(received.len(), 1, "delivered after the restart");
    assert_eq!(settled(&app, sent.id).await.status, "sent");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.received().len(), 1, "and only once");
}

async fn the_same_idempotency_key_returns_the_first_answer_and_a_new_payload_conflicts(
    app: TestApp,
) {
    let mailbox = mailbox(&app).await;
    let client = app.sdk(&app.org.token);
    let request = SendEmailRequest {
        to: "ann@example.com".into(),
        subject: "once".into(),
        body_text: Some("x".into()),
        idempotency_key: Some("order-42".into()),
        ..Default::default()
    };
    let first = client.comms().send_email(mailbox.id, request.clone()).await.unwrap();
    let again = client.comms().send_email(mailbox.id, request.clone()).await.unwrap();
    assert_eq!(first, again);
    let changed = SendEmailRequest { subject: "twice?".into(), ..request };
    let error = client.comms().send_email(mailbox.id, changed).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(409), Some("conflict")));
    let listed =
        client.comms().list_messages(mailbox.id, ListMessagesQuery::default()).await.unwrap();
    assert_eq!(listed.messages.len(), 1);
}

async fn a_send_is_checked_and_each_error_names_its_field(app: TestApp) {
    let mailbox = mailbox(&app).await;
    let client = app.sdk(&app.org.token);
    let base = SendEmailRequest {
        to: "ann@example.com".into(),
        subject: "s".into(),
        body_text: Some("b".into()),
        ..Default::default()
    };
    let cases = [
        (SendEmailRequest { to: "not an address".into(), ..base.clone() }, "to"),
        (SendEmailRequest { from: Some("Me <someone@else.com>".into()), ..base.clone() }, "from"),
        (SendEmailRequest { body_text: None, ..base.clone() }, "body_text"),
        (SendEmailRequest { subject: "two\r\nlines".into(), ..base.clone() }, "subject"),
        (
            SendEmailRequest {
                cc: Some(
                    (0..60).map(|i| format!("p{i}@example.com")).collect::<Vec<_>>().join(","),
                ),
                ..base.clone()
            },
            "to",
        ),
    ];
    for (request, field) in cases {
        let error = client.comms().send_email(mailbox.id, request).await.unwrap_err();
        assert_eq!(error.status(), Some(400), "{field}: {error}");
        assert!(error.to_string().contains(&format!("`{field}`")), "{field}: {error}");
    }
    let (_, stranger) = app.agent("stranger").await;
    let error = app.sdk(&stranger).comms().send_email(mailbox.id, base).await.unwrap_err();
    assert_eq!(error.status(), Some(404), "an agent sends only from its own mailboxes");
}

async fn an_agent_over_mcp_reads_its_inbox_and_replies_in_the_thread(app: TestApp) {
    let smtp = SmtpServer::start(&[]).await;
    let app = app.with_smtp(&smtp.url).await;
    let mailbox = mailbox(&app).await;
    let org = app.sdk(&app.org.token);
    let request =
        CreateChannelRequest { mailbox_id: mailbox.id, kind: "email".into(), ..Default::default() };
    let channel = org.comms().create_channel(request).await.unwrap();
    let inbound = format!(
        "From: Ada <ada@example.com>\r\nTo: {}\r\nSubject: Where is my order?\r\n\
         Message-ID: <q1@example.com>\r\nReferences: <root@example.com>\r\n\r\nOrder 42 is late.\r\n",
        mailbox.address
    );
    app.sdk(&channel.secret)
        .comms()
        .receive_email(channel.channel.id, inbound.as_bytes())
        .await
        .unwrap();

    let key = &app.org.agent_key;
    let inbox = app.tool(key, "list_mailbox_messages", json!({ "mailbox_id": mailbox.id })).await;
    let question = &inbox["structuredContent"]["messages"][0];
    assert_eq!(question["subject"], "Where is my order?");
    let reply = json!({
        "mailbox_id": mailbox.id,
        "to": question["from"],
        "subject": "Re: Where is my order?",
        "body_text": "It ships today.",
        "in_reply_to": question["message_id"],
    });
    let sent = app.tool(key, "send_email", reply).await;
    assert_eq!(sent["isError"], false, "{sent}");

    let received = smtp.wait_for(1, WITHIN).await;
    let data = &received[0].data;
    assert_eq!(received[0].to, ["ada@example.com"]);
    assert!(data.contains("In-Reply-To: <q1@example.com>"), "{data}");
    assert!(data.contains("References: <root@example.com> <q1@example.com>"), "{data}");
    let (status, _) = app.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

on_both_databases!(
    a_send_arrives_with_its_headers_and_every_recipient,
    a_relay_that_answers_4xx_then_accepts_gets_exactly_one_copy,
    a_relay_that_answers_5xx_fails_the_send,
    a_send_accepted_while_the_relay_is_down_is_delivered_once_after_a_restart,
    the_same_idempotency_key_returns_the_first_answer_and_a_new_payload_conflicts,
    a_send_is_checked_and_each_error_names_its_field,
    an_agent_over_mcp_reads_its_inbox_and_replies_in_the_thread,
);
