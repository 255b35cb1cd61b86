//! The request scenarios, all closed loops of C clients for D seconds:
//!
//! - `baseline`: `GET /healthz`, the ceiling of the HTTP stack on this machine;
//! - `post`: `POST /v1/rooms/{room_id}/messages` with an agent key, into R rooms;
//! - `mcp-post`: the same through `POST /v1/mcp`, a JSON-RPC `tools/call` of
//!   `post_room_message`; a result with `isError: true` counts as an error.
//!
//! After a posting run each room's newest `seq` must equal the posts acknowledged in it: a
//! larger one means a write committed whose answer was lost, a smaller one a lost write.

use anyhow::Context as _;
use kapable_sdk::comms::types::{
    CreateAgentRequest, CreateRoomRequest, InviteAgentRequest, ListRoomMessagesQuery,
    MintAgentKeyRequest,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::gateway::Gateway;
use crate::load::{
    LoadResult, Outcome, Target, any_success, closed_loop, expect_success, http_client,
};
use crate::report::{self, Row, Tail};
use crate::{Args, Scenario};

/// `baseline`: `GET /healthz` from `--clients` clients.
pub async fn baseline(gateway: &Gateway, args: &Args) -> anyhow::Result<Row> {
    progress(gateway, Scenario::Baseline, args, "GET /healthz");
    let target = Target::new(&gateway.url, &gateway.token)?;
    let health = target.clone();
    let result = closed_loop(
        &target,
        args.clients,
        args.duration(),
        move |_, _| health.get("/healthz"),
        any_success,
    )
    .await?;
    Ok(load_row(Scenario::Baseline, gateway, &result, "req/s"))
}

/// `post`: room messages over REST.
pub async fn post(gateway: &Gateway, args: &Args) -> anyhow::Result<Row> {
    let rooms = Rooms::create(gateway, args.rooms).await?;
    progress(gateway, Scenario::Post, args, &format!("POST messages into {} room(s)", args.rooms));
    let target = Target::new(&gateway.url, &rooms.agent_key)?;
    let paths: Vec<String> =
        rooms.ids.iter().map(|id| format!("/v1/rooms/{id}/messages")).collect();
    let poster = target.clone();
    let make = move |worker: usize, n: u64| {
        let body = json!({ "body": format!("bench w{worker} #{n}") });
        poster.post_json(&paths[worker % paths.len()], &body)
    };
    let result = closed_loop(&target, args.clients, args.duration(), make, any_success).await?;
    let mut row = load_row(Scenario::Post, gateway, &result, "msg/s");
    finish_posting(gateway, &rooms, &result, 0, &mut row).await?;
    Ok(row)
}

/// `mcp-post`: room messages through MCP `tools/call`, on a stateless MCP endpoint (one that
/// answers a call without `initialize`, as kapable-comms does).
pub async fn mcp_post(gateway: &Gateway, args: &Args) -> anyhow::Result<Row> {
    let rooms = Rooms::create(gateway, args.rooms).await?;
    let target = Target::new(&gateway.url, &rooms.agent_key)?;
    // One call before the run, which counts in the first room's seq.
    let probe = mcp_call(&rooms.ids, 0, 0, "probe");
    let answer = expect_success(
        http_client()?
            .post(format!("{}/v1/mcp", gateway.url))
            .bearer_auth(&rooms.agent_key)
            .header("Accept", "application/json, text/event-stream")
            .json(&probe),
    )
    .await
    .and_then(|body| judge_mcp(&body));
    answer.map_err(anyhow::Error::msg).context(
        "a tools/call without initialize failed; mcp-post needs a stateless MCP endpoint",
    )?;
    progress(gateway, Scenario::McpPost, args, "MCP tools/call post_room_message");
    let (caller, ids) = (target.clone(), rooms.ids.clone());
    let make = move |worker: usize, n: u64| {
        let body = format!("bench w{worker} #{n}");
        caller.post_json("/v1/mcp", &mcp_call(&ids, worker, n, &body))
    };
    let result = closed_loop(&target, args.clients, args.duration(), make, judge_mcp).await?;
    let mut row = load_row(Scenario::McpPost, gateway, &result, "msg/s");
    row.extra("mcp_session", "stateless", "MCP stateless".to_owned());
    finish_posting(gateway, &rooms, &result, 1, &mut row).await?;
    Ok(row)
}

/// The JSON-RPC `tools/call` of `post_room_message` into the worker's room.
fn mcp_call(ids: &[Uuid], worker: usize, n: u64, body: &str) -> Value {
    let arguments = json!({ "room_id": ids[worker % ids.len()], "body": body });
    let params = json!({ "name": "post_room_message", "arguments": arguments });
    json!({ "jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params })
}

/// A JSON-RPC answer, as JSON or as one SSE event: a result without `isError` is a success.
fn judge_mcp(body: &[u8]) -> Outcome {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    let json = match text.trim_start().starts_with('{') {
        true => text,
        false => text
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .ok_or_else(|| format!("no JSON in the answer: {}", truncate(text)))?,
    };
    let answer: Value =
        serde_json::from_str(json.trim()).map_err(|e| format!("bad JSON-RPC answer: {e}"))?;
    match answer.get("result") {
        Some(result) if result["isError"] == Value::Bool(true) => {
            Err(format!("isError: {}", truncate(&result["content"].to_string())))
        }
        Some(_) => Ok(()),
        None => Err(format!("JSON-RPC error: {}", truncate(&answer["error"].to_string()))),
    }
}

/// An agent, its key, and rooms it may post in.
#[derive(Debug)]
struct Rooms {
    agent_key: String,
    ids: Vec<Uuid>,
}

impl Rooms {
    /// Creates the agent `bench-poster`, a key, and `count` rooms it participates in.
    async fn create(gateway: &Gateway, count: usize) -> anyhow::Result<Rooms> {
        let client = kapable_sdk::Client::new(&gateway.url, &gateway.token);
        let comms = client.comms();
        let name = "bench-poster".to_owned();
        let agent = comms.create_agent(CreateAgentRequest { name, ..Default::default() }).await?;
        let label = "kapable-bench".to_owned();
        let agent_key = comms.mint_agent_key(agent.id, MintAgentKeyRequest { label }).await?.key;
        let mut ids = Vec::with_capacity(count);
        for i in 0..count.max(1) {
            let name = format!("bench-{i}");
            let room = comms.create_room(CreateRoomRequest { name, ..Default::default() }).await?;
            let role = Some("participant".to_owned());
            let invite = InviteAgentRequest { agent_id: agent.id, role };
            comms.invite_agent_to_room(room.room.id, invite).await?;
            ids.push(room.room.id);
        }
        Ok(Rooms { agent_key, ids })
    }
}

/// Adds the WAL size and the seq check to a posting row. `probes` messages were posted in the
/// first room before the run.
async fn finish_posting(
    gateway: &Gateway,
    rooms: &Rooms,
    result: &LoadResult,
    probes: u64,
    row: &mut Row,
) -> anyhow::Result<()> {
    if let Some(wal) = gateway.wal_bytes() {
        row.extra("wal_bytes", wal, format!("WAL {}", report::bytes(wal)));
    }
    let client = kapable_sdk::Client::new(&gateway.url, &gateway.token);
    let (mut acked_total, mut seq_total, mut mismatched) = (0, 0, 0);
    for (room, id) in rooms.ids.iter().enumerate() {
        let acked: u64 = result
            .ok_per_worker
            .iter()
            .enumerate()
            .filter(|(worker, _)| worker % rooms.ids.len() == room)
            .map(|(_, ok)| ok)
            .sum::<u64>()
            + if room == 0 { probes } else { 0 };
        let query = ListRoomMessagesQuery { limit: Some(1), ..Default::default() };
        let newest = client.comms().list_room_messages(*id, query).await?;
        let seq = newest.messages.first().map_or(0, |m| m.seq) as u64;
        mismatched += u64::from(seq != acked);
        acked_total += acked;
        seq_total += seq;
    }
    row.extra("acked", acked_total, format!("acked {acked_total}"));
    row.extra("newest_seq", seq_total, format!("seq {seq_total}"));
    let verdict = if mismatched == 0 { "ok" } else { "MISMATCH" };
    row.extra("seq_check", verdict, format!("seq check {verdict}"));
    Ok(())
}

/// The row of a closed-loop run.
fn load_row(scenario: Scenario, gateway: &Gateway, result: &LoadResult, unit: &str) -> Row {
    let mut row = Row::new(scenario.name(), gateway.label, result.throughput(), unit);
    row.errors = result.errors;
    row.latencies(result.latencies.clone(), Tail::P999);
    if let Some(error) = &result.first_error {
        eprintln!("  first error: {error}");
        row.extra("first_error", error.as_str(), format!("first error: {}", truncate(error)));
    }
    row
}

/// Prints what is about to run.
fn progress(gateway: &Gateway, scenario: Scenario, args: &Args, what: &str) {
    eprintln!(
        "[{}] {}: {what}, {} clients for {} s ...",
        gateway.label,
        scenario.name(),
        args.clients,
        args.duration
    );
}

fn truncate(text: &str) -> String {
    text.chars().take(160).collect()
}
