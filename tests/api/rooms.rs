//! Rooms end to end: the API's own examples, the same conversation over MCP, invites, guests
//! and membership.

use std::collections::HashSet;

use kapable_sdk::comms::types::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;

#[expect(clippy::needless_update, reason = "the API document's examples, verbatim")]
async fn the_room_examples_of_the_api_document_run_as_written(app: TestApp) {
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

        // The Rust examples of the API document, verbatim.
        let room_resp = client
            .comms()
            .create_room(CreateRoomRequest {
                name: "project-alpha".into(),
                description: Some("Main coordination channel".into()),
                ..Default::default()
            })
            .await?;

        let invite = client
            .comms()
            .create_invite(room_resp.room.id, CreateInviteRequest { ..Default::default() })
            .await?;

        client.comms().join_room(&invite.token, JoinRoomRequest { ..Default::default() }).await?;

        client
            .comms()
            .post_room_message(
                room_resp.room.id,
                PostRoomMessageRequest {
                    body: "Deployment started for v2.1".into(),
                    kind: Some("text".into()),
                    ..Default::default()
                },
            )
            .await?;

        let msgs = client
            .comms()
            .list_room_messages(
                room_resp.room.id,
                ListRoomMessagesQuery { limit: Some(50), ..Default::default() },
            )
            .await?;
        assert_eq!(msgs.messages[0].body, "Deployment started for v2.1");

        let room_id = room_resp.room.id;
        let invitation = client
            .comms()
            .invite_agent_to_room(
                room_id,
                InviteAgentRequest {
                    agent_id: agent.id,
                    role: Some("participant".into()),
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(invitation.agent_id, Some(agent.id));

        client.comms().revoke_room_agent(room_id, agent.id).await?;
        let detail = client.comms().get_room(room_id).await?;
        assert!(detail.participants.iter().all(|p| p.agent_id != Some(agent.id)));
        Ok(())
    }
    .await;
    outcome.expect("the examples run");
}

/// Calls a tool and returns its structured result, failing on an error result.
async fn tool_ok(app: &TestApp, token: &str, name: &str, arguments: Value) -> Value {
    let result = app.tool(token, name, arguments).await;
    assert_eq!(result["isError"], false, "{name}: {result}");
    result["structuredContent"].clone()
}

async fn two_agents_over_mcp_talk_in_a_room_a_guest_joined_and_rest_sees_it_all(app: TestApp) {
    let (_, alice) = app.agent("alice").await;
    let (bob_id, bob) = app.agent("bob").await;

    let room = tool_ok(&app, &alice, "create_room", json!({ "name": "standup" })).await;
    let room_id = room["room"]["id"].as_str().unwrap().to_owned();
    tool_ok(
        &app,
        &alice,
        "invite_agent_to_room",
        json!({ "room_id": room_id, "agent_id": bob_id }),
    )
    .await;
    let invite = tool_ok(&app, &alice, "create_room_invite", json!({ "room_id": room_id })).await;
    let token = invite["token"].as_str().unwrap();

    // A third agent joins over MCP with the invite token, a guest over REST.
    let (dave_id, dave) = app.agent("dave").await;
    let joined_dave = tool_ok(&app, &dave, "join_room", json!({ "token": token })).await;
    assert_eq!(joined_dave["participant"]["agent_id"], json!(dave_id));
    let (status, joined) = app
        .call(
            Method::POST,
            &format!("/v1/rooms/join/{token}"),
            None,
            Some(json!({ "display_name": "Carol" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{joined}");
    assert_eq!(joined["participant"]["kind"], "guest");
    let carol = joined["participant_token"].as_str().unwrap().to_owned();

    let hello =
        tool_ok(&app, &alice, "post_room_message", json!({ "room_id": room_id, "body": "hello" }))
            .await;
    tool_ok(
        &app,
        &bob,
        "post_room_message",
        json!({ "room_id": room_id, "body": "hi alice", "reply_to": hello["id"] }),
    )
    .await;
    tool_ok(&app, &dave, "post_room_message", json!({ "room_id": room_id, "body": "dave here" }))
        .await;
    tool_ok(&app, &carol, "post_room_message", json!({ "room_id": room_id, "body": "hi both" }))
        .await;
    tool_ok(
        &app,
        &bob,
        "annotate_message",
        json!({ "room_id": room_id, "message_id": hello["id"],
        "annotations": [{ "kind": "reaction", "key": "👍" }] }),
    )
    .await;
    tool_ok(
        &app,
        &bob,
        "heartbeat",
        json!({ "room_id": room_id, "agent_id": bob_id, "status": "busy", "note": "reviewing" }),
    )
    .await;

    let seen_by_bob =
        tool_ok(&app, &bob, "list_room_messages", json!({ "room_id": room_id })).await;
    let (_, rest) = app
        .call(Method::GET, &format!("/v1/rooms/{room_id}/messages"), Some(&app.org.token), None)
        .await;
    assert_eq!(seen_by_bob, rest, "MCP and REST answer the same object");
    let bodies: Vec<&str> =
        rest["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["hi both", "dave here", "hi alice", "hello"]);
    let senders: Vec<&str> = rest["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sender"]["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(senders, ["Carol", "dave", "bob", "alice"]);
    assert_eq!(rest["messages"][2]["reply_to"], hello["id"]);
    assert_eq!(
        rest["messages"][3]["annotations"],
        json!([{ "kind": "reaction", "key": "👍", "count": 1 }])
    );

    let (_, presence) =
        app.call(Method::GET, &format!("/v1/rooms/{room_id}/presence"), Some(&carol), None).await;
    assert_eq!(presence["presence"][0]["agent_id"], json!(bob_id));
    assert_eq!(presence["presence"][0]["status"], "busy");
    assert_eq!(presence["presence"][0]["online"], true);

    let (_, detail) =
        app.call(Method::GET, &format!("/v1/rooms/{room_id}"), Some(&app.org.token), None).await;
    let roles: Vec<(&str, &str)> = detail["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["display_name"].as_str().unwrap(), p["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("alice", "owner"),
            ("bob", "participant"),
            ("dave", "participant"),
            ("Carol", "participant")
        ]
    );
}

async fn a_guest_token_works_in_its_room_and_nowhere_else(app: TestApp) {
    let org = app.sdk(&app.org.token);
    let room = app.room("a").await;
    let other = app.room("b").await;
    let invite = org.comms().create_invite(room.id, CreateInviteRequest::default()).await.unwrap();
    let joined =
        app.sdk("").comms().join_room(&invite.token, JoinRoomRequest::default()).await.unwrap();
    assert_eq!(joined.participant.display_name, "guest");
    let guest = app.sdk(joined.participant_token.as_deref().unwrap());

    let me = guest.comms().whoami().await.unwrap();
    assert_eq!((me.kind, me.room_id), (CallerKind::Participant, Some(room.id)));
    guest.comms().get_room(room.id).await.unwrap();
    let post = PostRoomMessageRequest { body: "hello from a guest".into(), ..Default::default() };
    guest.comms().post_room_message(room.id, post.clone()).await.unwrap();

    assert_eq!(guest.comms().get_room(other.id).await.unwrap_err().status(), Some(404));
    assert_eq!(
        guest.comms().post_room_message(other.id, post).await.unwrap_err().status(),
        Some(404)
    );
    assert_eq!(guest.comms().list_agents().await.unwrap_err().status(), Some(403));
    assert_eq!(guest.comms().list_rooms().await.unwrap_err().status(), Some(403));

    let (_, tools) =
        app.mcp(joined.participant_token.as_deref().unwrap(), "tools/list", json!({})).await;
    let names: HashSet<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains("post_room_message") && names.contains("whoami"), "{names:?}");
    assert!(!names.contains("create_room") && !names.contains("list_agents"), "{names:?}");
}

async fn an_agent_sees_only_its_rooms_and_loses_access_when_revoked(app: TestApp) {
    let (agent_id, key) = app.agent("worker").await;
    let org = app.sdk(&app.org.token);
    let agent = app.sdk(&key);
    let mine = app.room("mine").await;
    let not_mine = app.room("not mine").await;
    app.add_to_room(mine.id, agent_id).await;

    let rooms = agent.comms().list_rooms().await.unwrap();
    assert_eq!(rooms.rooms.iter().map(|r| r.id).collect::<Vec<_>>(), [mine.id]);
    assert_eq!(agent.comms().get_room(not_mine.id).await.unwrap_err().status(), Some(404));
    agent.comms().get_room(mine.id).await.unwrap();

    org.comms().revoke_room_agent(mine.id, agent_id).await.unwrap();
    assert_eq!(agent.comms().get_room(mine.id).await.unwrap_err().status(), Some(404));
    assert!(agent.comms().list_rooms().await.unwrap().rooms.is_empty());
}

async fn invites_stop_working_when_used_up_or_revoked(app: TestApp) {
    let org = app.sdk(&app.org.token);
    let room = app.room("r").await;
    let once = org
        .comms()
        .create_invite(room.id, CreateInviteRequest { max_uses: Some(1), ..Default::default() })
        .await
        .unwrap();
    let anyone = app.sdk("");
    anyone.comms().join_room(&once.token, JoinRoomRequest::default()).await.unwrap();
    let used_up =
        anyone.comms().join_room(&once.token, JoinRoomRequest::default()).await.unwrap_err();
    assert_eq!((used_up.status(), used_up.code()), (Some(410), Some("invite_expired")));

    let revoked = org.comms().create_invite(room.id, CreateInviteRequest::default()).await.unwrap();
    let listed = org.comms().list_room_invites(room.id, PageQuery::default()).await.unwrap();
    assert_eq!(
        listed.invites.iter().map(|i| i.id).collect::<Vec<_>>(),
        [revoked.invite.id],
        "used-up invites are not listed"
    );
    assert!(!serde_json::to_string(&listed).unwrap().contains(&revoked.token));
    org.comms().revoke_room_invite(room.id, revoked.invite.id).await.unwrap();
    let error =
        anyone.comms().join_room(&revoked.token, JoinRoomRequest::default()).await.unwrap_err();
    assert_eq!(error.code(), Some("invite_expired"));

    let unknown = anyone
        .comms()
        .join_room(&format!("inv_{}", "x".repeat(43)), JoinRoomRequest::default())
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(404));
    let bad = CreateInviteRequest { expires_in: Some(5), ..Default::default() };
    let error = org.comms().create_invite(room.id, bad).await.unwrap_err();
    assert!(error.to_string().contains("expires_in"), "{error}");
}

async fn an_agent_joining_twice_keeps_its_role_and_uses_the_invite_once(app: TestApp) {
    let (agent_id, key) = app.agent("joiner").await;
    let org = app.sdk(&app.org.token);
    let room = app.room("r").await;
    let request = CreateInviteRequest {
        role: Some("observer".into()),
        max_uses: Some(1),
        ..Default::default()
    };
    let invite = org.comms().create_invite(room.id, request).await.unwrap();

    let path = format!("/v1/rooms/join/{}", invite.token);
    let (status, first) = app.call(Method::POST, &path, Some(&key), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["participant"]["agent_id"], json!(agent_id));
    assert_eq!(first["participant"]["role"], "observer");
    assert!(first.get("participant_token").is_none(), "an agent needs no participant token");

    let (status, again) = app.call(Method::POST, &path, Some(&key), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["participant"]["id"], first["participant"]["id"]);
}

on_both_databases!(
    the_room_examples_of_the_api_document_run_as_written,
    two_agents_over_mcp_talk_in_a_room_a_guest_joined_and_rest_sees_it_all,
    a_guest_token_works_in_its_room_and_nowhere_else,
    an_agent_sees_only_its_rooms_and_loses_access_when_revoked,
    invites_stop_working_when_used_up_or_revoked,
    an_agent_joining_twice_keeps_its_role_and_uses_the_invite_once,
);
