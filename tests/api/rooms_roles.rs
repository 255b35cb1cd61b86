//! The role matrix: each role against each room operation, allowed or 403.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::on_both_databases;

/// The weakest role an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Needs {
    Observer,
    Participant,
    Admin,
}

/// One room, its members by role, and the objects the checked operations act on.
struct Fixture {
    room: String,
    message: String,
}

impl Fixture {
    async fn new(app: &TestApp) -> Fixture {
        let (_, room) = app
            .call(
                Method::POST,
                "/v1/rooms",
                Some(&app.org.token),
                Some(json!({ "name": "matrix" })),
            )
            .await;
        let room = room["room"]["id"].as_str().unwrap().to_owned();
        let (_, message) = app
            .call(
                Method::POST,
                &format!("/v1/rooms/{room}/messages"),
                Some(&app.org.token),
                Some(json!({ "body": "m" })),
            )
            .await;
        Fixture { room, message: message["id"].as_str().unwrap().to_owned() }
    }

    /// A new agent made a member with `role` by the org; its id and key.
    async fn member(&self, app: &TestApp, name: &str, role: &str) -> (String, String) {
        let (agent_id, key) = app.agent(name).await;
        let path = format!("/v1/rooms/{}/agents", self.room);
        let body = json!({ "agent_id": agent_id, "role": role });
        let (status, answer) =
            app.call(Method::POST, &path, Some(&app.org.token), Some(body)).await;
        assert!(status.is_success(), "{answer}");
        (agent_id.to_string(), key)
    }

    /// A guest's participant token (role participant).
    async fn guest(&self, app: &TestApp) -> String {
        let path = format!("/v1/rooms/{}/invites", self.room);
        let (_, invite) =
            app.call(Method::POST, &path, Some(&app.org.token), Some(json!({}))).await;
        let join = format!("/v1/rooms/join/{}", invite["token"].as_str().unwrap());
        let (_, joined) =
            app.call(Method::POST, &join, None, Some(json!({ "display_name": "g" }))).await;
        joined["participant_token"].as_str().unwrap().to_owned()
    }

    /// The request that exercises `operation`, setting up what it acts on with the org token.
    async fn request(
        &self,
        app: &TestApp,
        operation: &str,
        n: usize,
    ) -> (Method, String, Option<Value>) {
        let room = &self.room;
        match operation {
            "get_room" => (Method::GET, format!("/v1/rooms/{room}"), None),
            "list_room_messages" => (Method::GET, format!("/v1/rooms/{room}/messages"), None),
            "room_presence" => (Method::GET, format!("/v1/rooms/{room}/presence"), None),
            "post_room_message" => {
                (Method::POST, format!("/v1/rooms/{room}/messages"), Some(json!({ "body": "hi" })))
            }
            "annotate_message" => (
                Method::POST,
                format!("/v1/rooms/{room}/messages/{}/annotations", self.message),
                Some(json!({ "annotations": [{ "kind": "reaction", "key": "ok" }] })),
            ),
            "create_room_invite" => {
                (Method::POST, format!("/v1/rooms/{room}/invites"), Some(json!({})))
            }
            "list_room_invites" => (Method::GET, format!("/v1/rooms/{room}/invites"), None),
            "revoke_room_invite" => {
                let path = format!("/v1/rooms/{room}/invites");
                let (_, invite) =
                    app.call(Method::POST, &path, Some(&app.org.token), Some(json!({}))).await;
                let id = invite["id"].as_str().unwrap();
                (Method::POST, format!("/v1/rooms/{room}/invites/{id}/revoke"), Some(json!({})))
            }
            "invite_agent_to_room" => {
                let (agent_id, _) = app.agent(&format!("invitee-{operation}-{n}")).await;
                let body = json!({ "agent_id": agent_id, "role": "observer" });
                (Method::POST, format!("/v1/rooms/{room}/agents"), Some(body))
            }
            "revoke_room_agent" => {
                let (agent_id, _) = self.member(app, &format!("target-{n}"), "participant").await;
                (
                    Method::POST,
                    format!("/v1/rooms/{room}/agents/{agent_id}/revoke"),
                    Some(json!({})),
                )
            }
            other => panic!("no request for {other}"),
        }
    }
}

const OPERATIONS: [(&str, Needs); 10] = [
    ("get_room", Needs::Observer),
    ("list_room_messages", Needs::Observer),
    ("room_presence", Needs::Observer),
    ("post_room_message", Needs::Participant),
    ("annotate_message", Needs::Participant),
    ("create_room_invite", Needs::Admin),
    ("list_room_invites", Needs::Admin),
    ("revoke_room_invite", Needs::Admin),
    ("invite_agent_to_room", Needs::Admin),
    ("revoke_room_agent", Needs::Admin),
];

async fn each_role_may_do_what_its_rank_allows_and_gets_403_otherwise(app: TestApp) {
    let fixture = Fixture::new(&app).await;
    let mut callers = Vec::new();
    for (role, rank) in [
        ("observer", Needs::Observer),
        ("participant", Needs::Participant),
        ("admin", Needs::Admin),
    ] {
        let (_, key) = fixture.member(&app, role, role).await;
        callers.push((role.to_owned(), rank, key));
    }
    let (_, owner) = fixture.member(&app, "owner", "owner").await;
    callers.push(("owner".into(), Needs::Admin, owner));
    callers.push(("guest".into(), Needs::Participant, fixture.guest(&app).await));

    let mut n = 0;
    for (role, rank, token) in &callers {
        for (operation, needs) in OPERATIONS {
            n += 1;
            let (method, path, body) = fixture.request(&app, operation, n).await;
            let (status, answer) = app.call(method, &path, Some(token), body).await;
            if *rank >= needs {
                assert!(status.is_success(), "{role} may {operation}: {status} {answer}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} may not {operation}: {answer}");
                assert_eq!(answer["error"]["code"], "forbidden");
            }
        }
    }
}

async fn admins_grant_and_revoke_only_weaker_roles_and_owners_any(app: TestApp) {
    let fixture = Fixture::new(&app).await;
    let (_, admin) = fixture.member(&app, "admin", "admin").await;
    let (_, owner) = fixture.member(&app, "owner", "owner").await;
    let (other_admin, _) = fixture.member(&app, "other-admin", "admin").await;
    let room = &fixture.room;

    let (new_agent, _) = app.agent("promoted").await;
    let grant_admin = json!({ "agent_id": new_agent, "role": "admin" });
    let path = format!("/v1/rooms/{room}/agents");
    let (status, _) = app.call(Method::POST, &path, Some(&admin), Some(grant_admin.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an admin may not make admins");
    let (status, _) = app.call(Method::POST, &path, Some(&owner), Some(grant_admin)).await;
    assert_eq!(status, StatusCode::CREATED, "an owner may");

    let invite = format!("/v1/rooms/{room}/invites");
    let (status, _) =
        app.call(Method::POST, &invite, Some(&admin), Some(json!({ "role": "admin" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor invite admins");

    let revoke = format!("/v1/rooms/{room}/agents/{other_admin}/revoke");
    let (status, _) = app.call(Method::POST, &revoke, Some(&admin), Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an admin may not remove an admin");
    let (status, _) = app.call(Method::POST, &revoke, Some(&owner), Some(json!({}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "an owner may");
}

/// Each request reads the role in force: one remembered from a request before a change never
/// outlives the change.
async fn a_changed_role_or_an_ended_membership_holds_from_the_next_request(app: TestApp) {
    let fixture = Fixture::new(&app).await;
    let (agent_id, key) = fixture.member(&app, "changing", "participant").await;
    let room = &fixture.room;
    let post = format!("/v1/rooms/{room}/messages");
    let grant = format!("/v1/rooms/{room}/agents");
    let say = || Some(json!({ "body": "still here?" }));
    let set_role = |role: &str| Some(json!({ "agent_id": agent_id, "role": role }));

    let (status, _) = app.call(Method::POST, &post, Some(&key), say()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) =
        app.call(Method::POST, &grant, Some(&app.org.token), set_role("observer")).await;
    assert!(status.is_success());
    let (status, _) = app.call(Method::POST, &post, Some(&key), say()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an observer may not post");
    let (status, _) =
        app.call(Method::POST, &grant, Some(&app.org.token), set_role("participant")).await;
    assert!(status.is_success());
    let (status, _) = app.call(Method::POST, &post, Some(&key), say()).await;
    assert_eq!(status, StatusCode::CREATED, "a participant again");

    let revoke = format!("/v1/rooms/{room}/agents/{agent_id}/revoke");
    let (status, _) = app.call(Method::POST, &revoke, Some(&app.org.token), Some(json!({}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.call(Method::POST, &post, Some(&key), say()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no longer a member");
}

on_both_databases!(
    each_role_may_do_what_its_rank_allows_and_gets_403_otherwise,
    admins_grant_and_revoke_only_weaker_roles_and_owners_any,
    a_changed_role_or_an_ended_membership_holds_from_the_next_request,
);
