//! Tests that walk the whole registry, so every operation added later is covered by them too.

use std::collections::HashMap;

use kapable_comms::ops;
use kapable_comms::registry::Operation;
use kapable_sdk::comms::types::CallerKind;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::on_both_databases;

/// The operation's path with each parameter replaced by the value `ids` gives it.
fn path_of(op: &Operation, ids: &HashMap<&str, String>) -> String {
    op.path_params().fold(op.path.to_owned(), |path, name| {
        let value = ids.get(name).cloned().unwrap_or_else(|| Uuid::now_v7().to_string());
        path.replace(&format!("{{{name}}}"), &value)
    })
}

/// A minimal input the operation decodes: its path ids from `ids`, and a value of the right
/// type for each required field (ids from `ids` where the name matches).
fn example_input(op: &Operation, ids: &HashMap<&str, String>) -> serde_json::Map<String, Value> {
    let schema = kapable_comms::registry::schema::standalone(op.input, false);
    let required = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
    let properties =
        schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut input = serde_json::Map::new();
    for name in required.iter().filter_map(Value::as_str) {
        let property = &properties[name];
        let value = match (ids.get(name), property.get("type").and_then(Value::as_str)) {
            (Some(id), _) => json!(id),
            (None, Some("integer")) => json!(1),
            (None, Some("array")) => json!([]),
            (None, Some("object")) => json!({}),
            (None, Some("boolean")) => json!(false),
            (None, _) if property.get("format") == Some(&json!("uuid")) => json!(Uuid::now_v7()),
            (None, _) => json!("x"),
        };
        input.insert(name.to_owned(), value);
    }
    input
}

fn method_of(op: &Operation) -> Method {
    Method::from_bytes(op.method.as_str().as_bytes()).unwrap()
}

async fn every_operation_that_needs_a_caller_answers_401_without_a_token(app: TestApp) {
    for op in ops::all().iter().filter(|op| !op.callers.is_public()) {
        let path = path_of(op, &HashMap::new());
        let (status, body) = app.call(method_of(op), &path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}: {body}", op.name);
        assert_eq!(body["error"]["code"], "unauthorized", "{}", op.name);
    }
    let (status, _) = app.mcp("", "tools/list", json!({})).await;
    assert_ne!(status, StatusCode::OK, "MCP without a token is refused");
    let response =
        app.http.post(format!("{}/v1/mcp", app.address)).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn every_operation_answers_404_for_another_orgs_ids(app: TestApp) {
    let ids = other_org_ids(&app).await;
    let callers = own_callers(&app).await;
    let fresh: HashMap<&str, String> =
        ids.keys().map(|&name| (name, Uuid::now_v7().to_string())).collect();

    // join_room is left out: an invite token is a capability that works across orgs; so is
    // receive_email, which takes a channel secret and has a test of its own.
    let with_ids = ops::all().iter().filter(|op| {
        !op.callers.is_public() && op.path_params().next().is_some() && !channel_only(op)
    });
    for op in with_ids {
        for (kind, token) in &callers {
            let what = format!("{} as {kind:?}", op.name);
            let (status, answer) = rest_call(&app, op, &ids, token).await;
            assert_eq!(answer.as_object().map(serde_json::Map::len), Some(1), "{what}: {answer}");
            let unknown = rest_call(&app, op, &fresh, token).await;
            assert_eq!((status, &answer), (unknown.0, &unknown.1), "{what}: an oracle");
            // A refusal that holds for any id (a caller of a kind the operation does not admit,
            // an agent acting for another agent) is a 403 that the oracle check shows to be
            // the same for ids that exist nowhere.
            let code = if status == StatusCode::FORBIDDEN { "forbidden" } else { "not_found" };
            assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
            assert!(status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN);
            if status == StatusCode::FORBIDDEN && !op.callers.admits(Some(*kind)) {
                continue;
            }

            let arguments = Value::Object(example_input(op, &ids));
            let result = app.tool(token, op.name, arguments).await;
            assert_eq!(result["isError"], true, "{what}: {result}");
            let text = result["content"][0]["text"].as_str().unwrap();
            let error: Value = serde_json::from_str(text).unwrap();
            assert_eq!(error["error"]["code"], code, "{what}: {text}");
        }
    }

    let still_there = app.sdk(&ids["token_org"]).comms().whoami().await;
    assert!(still_there.is_ok(), "nothing of the other org was changed");
}

/// Every stream of the other org answers 404 to every kind of caller of the first that may
/// follow such a stream, and the same as a stream of an id that does not exist.
async fn every_stream_answers_404_for_another_orgs_ids(app: TestApp) {
    let ids = other_org_ids(&app).await;
    let streams = [
        format!("/v1/rooms/{}/stream", ids["room_id"]),
        format!("/v1/agents/{}/stream", ids["agent_id"]),
        format!("/v1/orgs/{}/anomaly-feed", ids["org_id"]),
    ];
    for (kind, token) in own_callers(&app).await {
        for path in &streams {
            let (status, answer) = open_stream(&app, path, &token).await;
            let admitted = kind == CallerKind::Org || !path.ends_with("/anomaly-feed");
            let expected = if admitted { StatusCode::NOT_FOUND } else { StatusCode::FORBIDDEN };
            assert_eq!(status, expected, "{path} as {kind:?}: {answer}");
            assert_eq!(answer.as_object().map(serde_json::Map::len), Some(1), "{path}: {answer}");
            let unknown = path.replace(&ids["room_id"], &Uuid::now_v7().to_string());
            let unknown = unknown.replace(&ids["agent_id"], &Uuid::now_v7().to_string());
            let unknown = unknown.replace(&ids["org_id"], &Uuid::now_v7().to_string());
            let (_, unknown) = open_stream(&app, &unknown, &token).await;
            assert_eq!(answer, unknown, "{path} as {kind:?}: an oracle");
        }
    }
}

/// Opens a stream; the status and, unless it opened, the error. An open stream never ends, so
/// its body is not read.
async fn open_stream(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let url = format!("{}{path}", app.address);
    let response = app.http.get(url).bearer_auth(token).send().await.unwrap();
    match response.status() {
        StatusCode::OK => (StatusCode::OK, Value::Null),
        status => (status, response.json().await.unwrap()),
    }
}

/// The operation called over REST with `ids` in its path (and body), as `token`.
async fn rest_call(
    app: &TestApp,
    op: &Operation,
    ids: &HashMap<&str, String>,
    token: &str,
) -> (StatusCode, Value) {
    let path = path_of(op, ids);
    let mut body = example_input(op, ids);
    op.path_params().for_each(|name| drop(body.remove(name)));
    let body = matches!(op.method, axum::http::Method::POST | axum::http::Method::PUT)
        .then(|| Value::Object(body));
    app.call(method_of(op), &path, Some(token), body).await
}

/// A credential of every kind the first org hands out: its app token, the key of an agent in
/// one of its rooms, and a guest's participant token in that room.
async fn own_callers(app: &TestApp) -> Vec<(CallerKind, String)> {
    let room = app.room("ours").await;
    app.add_to_room(room.id, app.org.agent_id).await;
    let token = Some(app.org.token.as_str());
    let path = format!("/v1/rooms/{}/invites", room.id);
    let (_, invite) = app.call(Method::POST, &path, token, Some(json!({}))).await;
    let path = format!("/v1/rooms/join/{}", invite["token"].as_str().unwrap());
    let guest = json!({ "display_name": "guest" });
    let (status, joined) = app.call(Method::POST, &path, None, Some(guest)).await;
    assert_eq!(status, StatusCode::CREATED, "{joined}");
    vec![
        (CallerKind::Org, app.org.token.clone()),
        (CallerKind::Agent, app.org.agent_key.clone()),
        (CallerKind::Participant, joined["participant_token"].as_str().unwrap().to_owned()),
    ]
}

/// Objects of a second org, by the path parameter that names them.
async fn other_org_ids(app: &TestApp) -> HashMap<&'static str, String> {
    let other = app.other_org().await;
    let token = Some(other.token.as_str());
    let id = |value: &Value| value["id"].as_str().unwrap().to_owned();
    let (_, key) = app
        .call(Method::POST, &format!("/v1/agents/{}/keys", other.agent_id), token, Some(json!({})))
        .await;
    let (_, tokens) =
        app.call(Method::GET, &format!("/v1/orgs/{}/app-tokens", other.org_id), token, None).await;
    let (_, room) =
        app.call(Method::POST, "/v1/rooms", token, Some(json!({ "name": "theirs" }))).await;
    let room_id = id(&room["room"]);
    let (_, invite) = app
        .call(Method::POST, &format!("/v1/rooms/{room_id}/invites"), token, Some(json!({})))
        .await;
    let (_, message) = app
        .call(
            Method::POST,
            &format!("/v1/rooms/{room_id}/messages"),
            token,
            Some(json!({ "body": "hi" })),
        )
        .await;
    let (_, member) = app
        .call(
            Method::POST,
            &format!("/v1/rooms/{room_id}/agents"),
            token,
            Some(json!({ "agent_id": other.agent_id })),
        )
        .await;
    assert!(member["id"].is_string(), "{member}");
    let body = json!({ "address": format!("box-{}@example.com", Uuid::now_v7().simple()) });
    let (_, mailbox) = app.call(Method::POST, "/v1/mailboxes", token, Some(body)).await;
    let body = json!({ "mailbox_id": mailbox["id"], "kind": "email" });
    let (_, channel) = app.call(Method::POST, "/v1/channels", token, Some(body)).await;
    HashMap::from([
        ("agent_id", other.agent_id.to_string()),
        ("org_id", other.org_id.to_string()),
        ("key_id", id(&key)),
        ("token_id", id(&tokens["tokens"][0])),
        ("room_id", room_id),
        ("invite_id", id(&invite)),
        ("message_id", id(&message)),
        ("mailbox_id", id(&mailbox)),
        ("channel_id", id(&channel)),
        ("token_org", other.token.clone()),
    ])
}

/// Whether only a channel's secret may call the operation.
fn channel_only(op: &Operation) -> bool {
    op.callers.admits(Some(CallerKind::Channel)) && !op.callers.admits(Some(CallerKind::Org))
}

/// A token of the test org that the operation admits.
fn token_for<'a>(app: &'a TestApp, op: &Operation) -> &'a str {
    if op.callers.admits(Some(CallerKind::Org)) { &app.org.token } else { &app.org.agent_key }
}

async fn every_operation_names_an_unknown_field_over_rest_and_mcp(app: TestApp) {
    for op in ops::all().iter().filter(|op| !channel_only(op)) {
        let token = token_for(&app, op);
        let path = path_of(op, &HashMap::new());
        let (status, body) = match op.method {
            axum::http::Method::GET | axum::http::Method::DELETE => {
                app.call(method_of(op), &format!("{path}?bogus=1"), Some(token), None).await
            }
            _ => app.call(method_of(op), &path, Some(token), Some(json!({ "bogus": 1 }))).await,
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", op.name);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("`bogus`"), "{}: {message}", op.name);

        let mut arguments: serde_json::Map<String, Value> =
            op.path_params().map(|name| (name.to_owned(), json!(Uuid::now_v7()))).collect();
        arguments.insert("bogus".into(), json!(1));
        let result = app.tool(token, op.name, Value::Object(arguments)).await;
        assert_eq!(result["isError"], true, "{}: {result}", op.name);
        let text = result["content"][0]["text"].as_str().unwrap();
        let error: Value = serde_json::from_str(text).unwrap();
        assert_eq!(error["error"]["code"], "invalid_request", "{}: {text}", op.name);
        assert!(text.contains("`bogus`"), "{}: {text}", op.name);
    }
}

async fn every_path_parameter_that_is_not_an_id_is_a_400_naming_it(app: TestApp) {
    let takes_ids =
        |op: &&Operation| op.path_params().any(|p| p.ends_with("_id")) && !channel_only(op);
    for op in ops::all().iter().filter(takes_ids) {
        let ids: HashMap<&str, String> =
            op.path_params().map(|p| (p, "not-a-uuid".to_owned())).collect();
        let path = path_of(op, &ids);
        let body = (op.method == axum::http::Method::POST).then(|| json!({}));
        let (status, body) = app.call(method_of(op), &path, Some(&app.org.token), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", op.name);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(op.path_params().any(|p| message.contains(p)), "{}: {body}", op.name);
    }
}

/// Postgres stores no NUL in text or JSON: a NUL anywhere in an input is a 400 on either store,
/// never a 500, and nothing is written.
async fn a_nul_character_in_any_input_string_is_a_400_naming_its_field(app: TestApp) {
    let token = Some(app.org.token.as_str());
    let room = json!({ "name": "r", "metadata": { "note": "a\u{0}b" } });
    let (status, answer) = app.call(Method::POST, "/v1/rooms", token, Some(room)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["details"]["field"], "metadata");
    let (_, rooms) = app.call(Method::GET, "/v1/rooms", token, None).await;
    assert_eq!(rooms["rooms"], json!([]), "no room was created");

    let agent = json!({ "name": "a", "metadata": { "k\u{0}": 1 } });
    let (status, answer) = app.call(Method::POST, "/v1/agents", token, Some(agent)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a NUL in a key too: {answer}");
}

/// Postgres gives a stored JSON number back as all its digits; the largest ones still read back
/// as the numbers written, and the rows that hold them stay listable.
async fn extreme_numbers_in_metadata_read_back_as_written(app: TestApp) {
    let token = Some(app.org.token.as_str());
    let numbers = json!([f64::MIN, f64::MAX, 1.5e-300, 3181195.3020642954]);
    let agent = json!({ "name": "extreme", "metadata": { "numbers": numbers } });
    let (status, created) = app.call(Method::POST, "/v1/agents", token, Some(agent)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["numbers"], numbers);
    let (status, listed) = app.call(Method::GET, "/v1/agents", token, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let agents = listed["agents"].as_array().unwrap();
    let ours = agents.iter().find(|a| a["name"] == "extreme").expect("the agent is listed");
    assert_eq!(ours["metadata"]["numbers"], numbers);
}

/// A body of `null` is not the JSON object the document asks for.
async fn a_body_of_null_is_a_400(app: TestApp) {
    let token = Some(app.org.token.as_str());
    let (status, answer) =
        app.call(Method::POST, "/v1/stream-tickets", token, Some(Value::Null)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

/// An empty body is no body, so a body whose fields are all optional may be left out; a body
/// of whitespace is not JSON.
async fn an_empty_body_is_no_body_and_one_of_whitespace_is_a_400(app: TestApp) {
    let room = app.room("blank").await;
    let url = format!("{}/v1/rooms/{}/invites", app.address, room.id);
    let post = |body: &'static str| {
        let request = app.http.post(&url).bearer_auth(&app.org.token);
        request.header("content-type", "application/json").body(body).send()
    };
    assert_eq!(post("").await.unwrap().status(), StatusCode::CREATED);
    for blank in ["\n", " ", "\r\n\t"] {
        let answer = post(blank).await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{blank:?}");
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "invalid_request", "{answer}");
    }
}

on_both_databases!(
    a_nul_character_in_any_input_string_is_a_400_naming_its_field,
    a_body_of_null_is_a_400,
    an_empty_body_is_no_body_and_one_of_whitespace_is_a_400,
    extreme_numbers_in_metadata_read_back_as_written,
    every_operation_that_needs_a_caller_answers_401_without_a_token,
    every_operation_answers_404_for_another_orgs_ids,
    every_stream_answers_404_for_another_orgs_ids,
    every_operation_names_an_unknown_field_over_rest_and_mcp,
    every_path_parameter_that_is_not_an_id_is_a_400_naming_it,
);

/// A request head over 8 KiB is refused with 431, and the gateway goes on serving.
#[tokio::test]
async fn a_request_head_over_its_limit_is_431_and_the_next_request_is_served() {
    let app = TestApp::spawn_sqlite().await;
    let url = format!("{}/v1/me", app.address);
    let huge = "x".repeat(kapable_comms::server::MAX_REQUEST_HEAD_BYTES);
    let answer = app.http.get(&url).header("x-padding", huge).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let answer = app.http.get(&url).bearer_auth(&app.org.token).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}
