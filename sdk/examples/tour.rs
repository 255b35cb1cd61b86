//! The whole tour of the gateway through the SDK: an agent and its key, a mailbox and a
//! channel, a room, an invite and a join, a message with a reaction, presence, an email sent,
//! and the room's live stream.
//!
//! Start a gateway (`cargo run`), take the org app token it prints, then:
//!
//! ```sh
//! KAPABLE_URL=http://127.0.0.1:8787 KAPABLE_TOKEN=kap_... cargo run -p kapable-sdk --example tour
//! ```
//!
//! The blocks marked "as the API document writes it" are its Rust examples, word for word.

use std::time::Duration;

use futures_util::StreamExt;
use kapable_sdk::Client;
use kapable_sdk::comms::types::*;
use uuid::Uuid;

/// What the tour made, for whoever runs it to look at.
#[derive(Debug)]
pub struct Tour {
    /// The agent `support-bot`.
    pub agent_id: Uuid,
    /// Its key, shown once.
    pub agent_key: String,
    /// The mailbox `support@agents.kapable.run`.
    pub mailbox_id: Uuid,
    /// The room `project-alpha`.
    pub room_id: Uuid,
    /// The room's messages, oldest first.
    pub messages: Vec<String>,
    /// The id of the email sent.
    pub email_id: Uuid,
    /// The events the room's stream delivered, by name.
    pub streamed: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("KAPABLE_URL").unwrap_or_else(|_| "http://127.0.0.1:8787".into());
    let token = std::env::var("KAPABLE_TOKEN")
        .map_err(|_| "set KAPABLE_TOKEN to an org app token (kap_...); the gateway prints one on its first start")?;
    let client = Client::new(url, token);
    let tour = tour(&client).await?;
    println!("agent      {}", tour.agent_id);
    println!("mailbox    {}", tour.mailbox_id);
    println!("room       {}", tour.room_id);
    println!("messages   {:?}", tour.messages);
    println!("email      {} (queued)", tour.email_id);
    println!("streamed   {:?}", tour.streamed);
    Ok(())
}

/// Runs the tour with an org app token's client.
#[rustfmt::skip] // The API document's examples stay as it writes them.
#[expect(
    clippy::needless_update,
    reason = "the API document writes `..Default::default()` after every field too"
)]
pub async fn tour(client: &Client) -> Result<Tour, kapable_sdk::Error> {
    eprintln!("1/6 an agent and its key");
    // As the API document writes it:
    let agent = client.comms().create_agent(CreateAgentRequest {
        name: "support-bot".into(),
        description: Some("Customer support automation".into()),
        ..Default::default()
    }).await?;

    let key_resp = client.comms().mint_agent_key(agent.id, MintAgentKeyRequest {
        label: "production".into(),
    }).await?;

    let agents = client.comms().list_agents().await?;
    let mailboxes = client.comms().list_agent_mailboxes(agent.id).await?;
    // (end)
    assert!(agents.agents.iter().any(|a| a.id == agent.id));
    let _ = mailboxes;

    eprintln!("2/6 a mailbox and its email channel");
    // As the API document writes it:
    let mailbox = client.comms().create_mailbox(CreateMailboxRequest {
        agent_id: agent.id,
        address: "support@agents.kapable.run".into(),
        display_name: Some("Support Bot".into()),
        ..Default::default()
    }).await?;

    let channel = client.comms().create_channel(CreateChannelRequest {
        mailbox_id: mailbox.id,
        kind: "email".into(),
        ..Default::default()
    }).await?;
    // (end)
    let _ = channel;

    eprintln!("3/6 a room, an invite, a guest joining, a message");
    // As the API document writes it:
    let room_resp = client.comms().create_room(CreateRoomRequest {
        name: "project-alpha".into(),
        description: Some("Main coordination channel".into()),
        ..Default::default()
    }).await?;

    let invite = client.comms().create_invite(room_resp.room.id, CreateInviteRequest {
        ..Default::default()
    }).await?;

    client.comms().join_room(&invite.token, JoinRoomRequest {
        ..Default::default()
    }).await?;

    client.comms().post_room_message(room_resp.room.id, PostRoomMessageRequest {
        body: "Deployment started for v2.1".into(),
        kind: Some("text".into()),
        ..Default::default()
    }).await?;

    let msgs = client.comms().list_room_messages(room_resp.room.id, ListRoomMessagesQuery {
        limit: Some(50),
        ..Default::default()
    }).await?;
    // (end)
    let room_id = room_resp.room.id;

    eprintln!("4/6 the agent joins, reports its presence, reacts, and leaves");
    // From the room's first event, so nothing of the tour is missed.
    let mut stream = Box::pin(client.comms().follow_room(room_id, Some("0".into())));
    assert_eq!(msgs.messages.len(), 1);
    // As the API document writes it:
    let invitation = client.comms().invite_agent_to_room(room_id, InviteAgentRequest {
        agent_id: agent.id,
        role: Some("participant".into()),
        ..Default::default()
    }).await?;
    // (end)
    let _ = invitation;
    let as_agent = client.with_token(&key_resp.key);
    let status = HeartbeatRequest { status: Some("busy".into()), note: Some("triaging".into()) };
    as_agent.comms().heartbeat(room_id, agent.id, status).await?;
    let presence = client.comms().room_presence(room_id).await?;
    assert!(presence.presence.iter().any(|p| p.agent_id == agent.id && p.online));
    let post = PostRoomMessageRequest { body: "On it.".into(), ..Default::default() };
    let reply = as_agent.comms().post_room_message(room_id, post).await?;
    let thumbs = Annotation { kind: "reaction".into(), key: "+1".into(), value: None };
    let react = AnnotateMessageRequest { annotations: vec![thumbs] };
    client.comms().annotate_message(room_id, reply.id, react).await?;
    // As the API document writes it:
    client.comms().revoke_room_agent(room_id, agent.id).await?;
    // (end)

    eprintln!("5/6 an email from the agent's mailbox");
    // As the API document writes it:
    let messages = client.comms().list_messages(mailbox.id, ListMessagesQuery {
        limit: Some(20),
        since: Some("2026-05-01T00:00:00Z".into()),
        ..Default::default()
    }).await?;

    let sent = client.comms().send_email(mailbox.id, SendEmailRequest {
        to: "user@example.com".into(),
        subject: "Your support ticket update".into(),
        body_html: Some("<p>Your issue has been resolved.</p>".into()),
        from: Some("Support Bot <support@agents.kapable.run>".into()),
        ..Default::default()
    }).await?;
    // (end)
    let _ = messages;

    eprintln!("6/6 what the room's stream delivered");
    let mut streamed = Vec::new();
    while streamed.last().map(String::as_str) != Some("member_left") {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(event)) => streamed.push(event?.event),
            Ok(None) | Err(_) => break,
        }
    }
    let after = ListRoomMessagesQuery { after: Some("0".into()), ..Default::default() };
    let all = client.comms().list_room_messages(room_id, after).await?;
    Ok(Tour {
        agent_id: agent.id,
        agent_key: key_resp.key,
        mailbox_id: mailbox.id,
        room_id,
        messages: all.messages.into_iter().map(|m| m.body).collect(),
        email_id: sent.id,
        streamed,
    })
}
