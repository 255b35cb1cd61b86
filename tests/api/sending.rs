//! What an operator controls and sees of sending: quota defaults and overrides, a limit that
//! holds across two instances, the 429 and its headers, hits and audit filters, each anomaly
//! rule on a scripted burst (and not on normal traffic) reaching the anomaly feed, and webhook
//! channels that deliver each inbound message once, signed, retried after a failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use kapable_sdk::comms::types::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::on_both_databases;
use kapable_tools::smtp::SmtpServer;

const WITHIN: Duration = Duration::from_secs(30);

async fn mailbox(app: &TestApp) -> Mailbox {
    let request = CreateMailboxRequest {
        agent_id: app.org.agent_id,
        address: format!("ops-{}@agents.example.com", Uuid::now_v7().simple()),
        ..Default::default()
    };
    app.sdk(&app.org.token).comms().create_mailbox(request).await.unwrap()
}

fn email(to: &str) -> Value {
    json!({ "to": to, "subject": "status", "body_text": "all well" })
}

/// Posts a send over REST; the answer's status, headers and body.
async fn send(app: &TestApp, base: &str, mailbox_id: Uuid) -> (StatusCode, HeaderMap, Value) {
    let response = app
        .http
        .post(format!("{base}/v1/mailboxes/{mailbox_id}/send"))
        .bearer_auth(&app.org.agent_key)
        .json(&email("ann@example.com"))
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

async fn set_quotas(app: &TestApp, mailbox_id: Uuid, quotas: SetMailboxQuotasRequest) {
    app.sdk(&app.org.token).comms().set_mailbox_quotas(mailbox_id, quotas).await.unwrap();
}

async fn anomalies(app: &TestApp) -> Vec<Anomaly> {
    let org = app.sdk(&app.org.token);
    org.comms().list_anomalies(app.org.org_id, PageQuery::default()).await.unwrap().anomalies
}

async fn quotas_default_per_mailbox_and_an_override_replaces_what_it_sets(app: TestApp) {
    let org = app.sdk(&app.org.token);
    let mailbox = mailbox(&app).await;
    let defaults = SendLimits { per_minute: 60, per_hour: 1_000, per_day: 10_000 };

    let quotas = org.comms().get_mailbox_quotas(mailbox.id).await.unwrap();
    assert_eq!((quotas.effective, quotas.defaults, quotas.overrides), (defaults, defaults, None));
    assert_eq!(quotas.used, SendLimits { per_minute: 0, per_hour: 0, per_day: 0 });

    let change = SetMailboxQuotasRequest { per_hour: Some(5), ..Default::default() };
    let quotas = org.comms().set_mailbox_quotas(mailbox.id, change).await.unwrap();
    assert_eq!(quotas.effective, SendLimits { per_hour: 5, ..defaults });
    assert_eq!(quotas.overrides, Some(change));
    send(&app, &app.address, mailbox.id).await;
    let quotas = org.comms().get_mailbox_quotas(mailbox.id).await.unwrap();
    assert_eq!(quotas.used, SendLimits { per_minute: 1, per_hour: 1, per_day: 1 });

    let path = format!("/v1/mailboxes/{}/quotas", mailbox.id);
    let token = Some(app.org.token.as_str());
    let (status, body) =
        app.call(reqwest::Method::PUT, &path, token, Some(json!({ "per_minute": -1 }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["details"]["field"], "per_minute");
    let (status, _) = app.call(reqwest::Method::GET, &path, Some(&app.org.agent_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "quotas are the org's to see and set");
    let other = app.other_org().await;
    let (status, _) = app.call(reqwest::Method::GET, &path, Some(&other.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    org.comms().delete_mailbox_quotas(mailbox.id).await.unwrap();
    let quotas = org.comms().get_mailbox_quotas(mailbox.id).await.unwrap();
    assert_eq!((quotas.effective, quotas.overrides), (defaults, None));
}

async fn a_limit_holds_across_two_instances_and_refusals_carry_their_headers(app: TestApp) {
    let mailbox = mailbox(&app).await;
    set_quotas(
        &app,
        mailbox.id,
        SetMailboxQuotasRequest { per_minute: Some(10), ..Default::default() },
    )
    .await;
    let (second, _stop) = app.second_instance().await;

    let bases = [app.address.clone(), second];
    let attempts = (0..30).map(|i| send(&app, &bases[i % 2], mailbox.id));
    let answers = futures::future::join_all(attempts).await;
    let accepted = answers.iter().filter(|(status, ..)| *status == StatusCode::ACCEPTED).count();
    let limited: Vec<_> =
        answers.iter().filter(|(status, ..)| *status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert_eq!((accepted, limited.len()), (10, 20), "exactly the limit is accepted");

    let (_, headers, body) = limited[0];
    let header = |name: &str| headers[name].to_str().unwrap().parse::<i64>().unwrap();
    assert!((1..=60).contains(&header("retry-after")), "{headers:?}");
    assert_eq!((header("ratelimit-limit"), header("ratelimit-remaining")), (10, 0));
    assert_eq!(header("ratelimit-reset"), header("retry-after"));
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["details"]["window"], "minute");

    let agent = app.sdk(&app.org.agent_key);
    let hits = agent.comms().list_rate_limit_hits(mailbox.id, PageQuery::default()).await.unwrap();
    assert_eq!(hits.hits.len(), 20);
    assert!(hits.hits.iter().all(|h| h.window == "minute" && h.limit == 10 && h.sent == 10));
    assert!(hits.hits.iter().all(|h| h.caller == format!("agent:{}", app.org.agent_id)));

    let request = SendEmailRequest {
        to: "ann@example.com".into(),
        subject: "one more".into(),
        body_text: Some("x".into()),
        ..Default::default()
    };
    let error = agent.comms().send_email(mailbox.id, request).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(429), Some("rate_limited")));
    assert!(error.retry_after().is_some_and(|s| (1..=60).contains(&s)), "{error:?}");

    let result =
        app.tool(&app.org.agent_key, "send_email", json!({ "mailbox_id": mailbox.id, "to": "a@example.com", "subject": "s", "body_text": "b" })).await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(result.to_string().contains("rate_limited"), "{result}");
}

async fn the_audit_tells_every_outcome_and_filters_by_mailbox_outcome_and_time(app: TestApp) {
    let org = app.sdk(&app.org.token);
    let busy = mailbox(&app).await;
    let quiet = mailbox(&app).await;
    set_quotas(
        &app,
        busy.id,
        SetMailboxQuotasRequest { per_minute: Some(2), ..Default::default() },
    )
    .await;
    let start = chrono::Utc::now().to_rfc3339();
    for _ in 0..3 {
        send(&app, &app.address, busy.id).await;
    }
    let (status, ..) = send(&app, &app.address, quiet.id).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let path = format!("/v1/mailboxes/{}/send", quiet.id);
    let bad = json!({ "to": "not an address", "subject": "s", "body_text": "b" });
    let (status, _) = app.call(reqwest::Method::POST, &path, Some(&app.org.token), Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Deliveries are audited too, as the worker makes them; leave them out where counting.
    let audit = |query: SendAuditQuery| {
        let org = org.clone();
        async move {
            let page = org.comms().list_send_audit(app.org.org_id, query).await.unwrap();
            page.entries.into_iter().filter(|e| e.outcome != "delivered").collect::<Vec<_>>()
        }
    };
    let of_busy = audit(SendAuditQuery { mailbox_id: Some(busy.id), ..Default::default() }).await;
    let outcomes: Vec<_> = of_busy.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["rate_limited", "accepted", "accepted"], "newest first");
    assert!(of_busy.iter().all(|e| e.mailbox_id == busy.id));
    assert!(of_busy[0].detail.as_deref().is_some_and(|d| d.contains("per-minute limit of 2")));
    assert_eq!(of_busy[0].recipients, ["ann@example.com"]);

    let rejected =
        audit(SendAuditQuery { outcome: Some("rejected".into()), ..Default::default() }).await;
    assert_eq!(rejected.len(), 1);
    assert_eq!((rejected[0].mailbox_id, rejected[0].mail_id), (quiet.id, None));
    assert_eq!(rejected[0].recipients, ["not an address"]);
    assert!(rejected[0].detail.is_some());

    let all = audit(SendAuditQuery { since: Some(start.clone()), ..Default::default() }).await;
    assert_eq!(all.len(), 5);
    let later = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339();
    assert!(audit(SendAuditQuery { since: Some(later), ..Default::default() }).await.is_empty());
    let before = audit(SendAuditQuery { until: Some(start), ..Default::default() }).await;
    assert!(before.is_empty());

    let accepted = |limit, cursor| SendAuditQuery {
        outcome: Some("accepted".into()),
        limit: Some(limit),
        cursor,
        ..Default::default()
    };
    let first = org.comms().list_send_audit(app.org.org_id, accepted(2, None)).await.unwrap();
    let cursor = first.next_cursor.expect("three accepted sends are two pages of two");
    let rest =
        org.comms().list_send_audit(app.org.org_id, accepted(2, Some(cursor))).await.unwrap();
    assert_eq!((first.entries.len(), rest.entries.len(), rest.next_cursor), (2, 1, None));
    assert!(rest.entries[0].id < first.entries[1].id);

    let path = format!("/v1/orgs/{}/send-audit?outcome=bounced", app.org.org_id);
    let (status, body) = app.call(reqwest::Method::GET, &path, Some(&app.org.token), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["field"], "outcome");
    let other = app.other_org().await;
    let path = format!("/v1/orgs/{}/send-audit", app.org.org_id);
    let (status, _) = app.call(reqwest::Method::GET, &path, Some(&other.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_burst_of_sends_is_a_volume_spike_on_the_feed_and_normal_traffic_is_not(app: TestApp) {
    let org = app.sdk(&app.org.token);
    let mut feed = Box::pin(org.comms().follow_anomalies(app.org.org_id, Some("0".into())));
    let normal = mailbox(&app).await;
    for _ in 0..5 {
        send(&app, &app.address, normal.id).await;
    }
    let bursting = mailbox(&app).await;
    set_quotas(
        &app,
        bursting.id,
        SetMailboxQuotasRequest { per_minute: Some(1000), ..Default::default() },
    )
    .await;
    for _ in 0..60 {
        let (status, ..) = send(&app, &app.address, bursting.id).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    let event = tokio::time::timeout(WITHIN, feed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.event, "anomaly");
    assert_eq!(event.data["rule"], "volume_spike");
    assert_eq!(event.data["mailbox_id"], json!(bursting.id));
    assert_eq!(event.data["evidence"]["sent_in_window"], 50, "raised at the threshold");
    let found = anomalies(&app).await;
    assert_eq!(found.len(), 1, "once per window, and none for the normal mailbox: {found:?}");
    assert_eq!(found[0].id.to_string(), event.data["id"].as_str().unwrap());
}

async fn a_burst_of_refusals_is_flagged_and_a_few_are_not(app: TestApp) {
    let org = app.sdk(&app.org.token);
    let mut feed = Box::pin(org.comms().follow_anomalies(app.org.org_id, Some("0".into())));
    let closed = SetMailboxQuotasRequest { per_minute: Some(0), ..Default::default() };
    let few = mailbox(&app).await;
    set_quotas(&app, few.id, closed).await;
    for _ in 0..3 {
        send(&app, &app.address, few.id).await;
    }
    let many = mailbox(&app).await;
    set_quotas(&app, many.id, closed).await;
    for _ in 0..12 {
        let (status, ..) = send(&app, &app.address, many.id).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    let event = tokio::time::timeout(WITHIN, feed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(
        (event.data["rule"].as_str(), &event.data["mailbox_id"]),
        (Some("rate_limit_burst"), &json!(many.id))
    );
    assert_eq!(event.data["evidence"]["hits_in_window"], 10);
    assert_eq!(anomalies(&app).await.len(), 1);
}

async fn a_spike_of_permanent_failures_is_flagged_and_one_failure_is_not(app: TestApp) {
    let smtp = SmtpServer::start(&["550 5.1.1 no such user"; 6]).await;
    let app = app.with_smtp(&smtp.url).await;
    let org = app.sdk(&app.org.token);
    let mut feed = Box::pin(org.comms().follow_anomalies(app.org.org_id, Some("0".into())));
    let once = mailbox(&app).await;
    send(&app, &app.address, once.id).await;
    let settled = || async {
        for _ in 0..600 {
            let failed = SendAuditQuery { outcome: Some("failed".into()), ..Default::default() };
            let page = org.comms().list_send_audit(app.org.org_id, failed).await.unwrap();
            if page.entries.len() == 6 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let page = org.comms().list_send_audit(app.org.org_id, SendAuditQuery::default()).await;
        panic!("the sends never failed: {page:?}");
    };
    let failing = mailbox(&app).await;
    for _ in 0..5 {
        send(&app, &app.address, failing.id).await;
    }
    settled().await;
    let event = tokio::time::timeout(WITHIN, feed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.data["rule"], "failure_spike");
    assert_eq!(event.data["mailbox_id"], json!(failing.id));
    assert!(event.data["evidence"]["last_error"].as_str().unwrap().contains("550"));
    assert_eq!(anomalies(&app).await.len(), 1);
}

/// A webhook receiver on a free port: records each request, answers 500 to the first
/// `failures` of them and 200 after.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, bytes::Bytes)>>>,
    failures: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(failures: usize) -> (Receiver, String) {
        let receiver = Receiver { failures: Arc::new(Mutex::new(failures)), ..Default::default() };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: bytes::Bytes| {
                let state = state.clone();
                async move {
                    state.received.lock().unwrap().push((headers, body));
                    let mut failures = state.failures.lock().unwrap();
                    if *failures > 0 {
                        *failures -= 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    async fn wait_for(&self, count: usize) -> Vec<(HeaderMap, bytes::Bytes)> {
        for _ in 0..600 {
            let received = self.received.lock().unwrap().clone();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver got fewer than {count} requests");
    }
}

/// Checks the signature the way a receiver would: HMAC-SHA256 of `<timestamp>.<body>`.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let timestamp = headers["kapable-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    headers["kapable-signature"].to_str().unwrap() == format!("v1={expected}")
}

fn raw_mail(message_id: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@example.com>\r\nTo: ops@agents.example.com\r\nSubject: help\r\n\
         Message-ID: <{message_id}>\r\n\r\nThe printer is on fire.\r\n"
    )
    .into_bytes()
}

async fn a_webhook_channel_gets_each_inbound_message_once_signed_and_retried(app: TestApp) {
    let org = app.sdk(&app.org.token);
    let mailbox = mailbox(&app).await;
    let (receiver, url) = Receiver::start(1).await;
    let hook = org
        .comms()
        .create_channel(CreateChannelRequest {
            mailbox_id: mailbox.id,
            kind: "webhook".into(),
            url: Some(url),
        })
        .await
        .unwrap();
    let inbound = org
        .comms()
        .create_channel(CreateChannelRequest {
            mailbox_id: mailbox.id,
            kind: "email".into(),
            url: None,
        })
        .await
        .unwrap();
    let channel = app.sdk(&inbound.secret);
    let first = channel
        .comms()
        .receive_email(inbound.channel.id, &raw_mail("a@example.com"))
        .await
        .unwrap();
    channel.comms().receive_email(inbound.channel.id, &raw_mail("a@example.com")).await.unwrap();
    let second = channel
        .comms()
        .receive_email(inbound.channel.id, &raw_mail("b@example.com"))
        .await
        .unwrap();

    // The first request fails (500) and is retried: three requests for two messages.
    let received = receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received_all = receiver.received.lock().unwrap().clone();
    assert_eq!(received_all.len(), 3, "each message accepted once: {}", received.len());
    let mut delivered = Vec::new();
    for (headers, body) in &received_all {
        assert!(verify(&hook.secret, headers, body), "a valid signature");
        assert!(!verify("chs_not_the_secret", headers, body));
        let payload: WebhookPayload = serde_json::from_slice(body).unwrap();
        assert_eq!((payload.kind.as_str(), payload.channel_id), ("mail_message", hook.channel.id));
        assert_eq!(headers["kapable-delivery"].to_str().unwrap(), payload.delivery_id.to_string());
        assert_eq!(
            payload.message.body_text.as_deref().map(str::trim),
            Some("The printer is on fire.")
        );
        delivered.push(payload.message.id);
    }
    // The two messages go out at once; whichever came first got the 500 and came again.
    let retried = delivered[0];
    assert_eq!(delivered.iter().filter(|id| **id == retried).count(), 2, "{delivered:?}");
    let mut distinct = delivered.clone();
    distinct.sort();
    distinct.dedup();
    let mut expected = vec![first.id, second.id];
    expected.sort();
    assert_eq!(distinct, expected);
    let payload: WebhookPayload = serde_json::from_slice(&received_all[2].1).unwrap();
    assert_eq!(
        payload.message.body_text.as_deref().map(str::trim),
        Some("The printer is on fire.")
    );

    let deliveries = org
        .comms()
        .list_webhook_deliveries(hook.channel.id, PageQuery::default())
        .await
        .unwrap()
        .deliveries;
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d.status == "delivered" && d.last_status == Some(200)));
    for delivery in &deliveries {
        let expected = if delivery.mail_id == retried { 2 } else { 1 };
        assert_eq!(delivery.attempts, expected, "{delivery:?}");
    }
    let path = format!("/v1/channels/{}/deliveries", inbound.channel.id);
    let (status, _) = app.call(reqwest::Method::GET, &path, Some(&app.org.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an email channel has no deliveries");
}

on_both_databases!(
    quotas_default_per_mailbox_and_an_override_replaces_what_it_sets,
    a_limit_holds_across_two_instances_and_refusals_carry_their_headers,
    the_audit_tells_every_outcome_and_filters_by_mailbox_outcome_and_time,
    a_burst_of_sends_is_a_volume_spike_on_the_feed_and_normal_traffic_is_not,
    a_burst_of_refusals_is_flagged_and_a_few_are_not,
    a_spike_of_permanent_failures_is_flagged_and_one_failure_is_not,
    a_webhook_channel_gets_each_inbound_message_once_signed_and_retried,
);
