//! `whoami`: the identity behind the caller's token.

use axum::http::Method;
use kapable_sdk::comms::types::Whoami;

use super::NoInput;
use crate::auth::{Caller, Callers};
use crate::error::{ApiError, ApiResult};
use crate::registry::{Operation, Reply};
use crate::state::Ctx;

/// GET /v1/me
pub fn whoami() -> Operation {
    Operation::declare("whoami", Method::GET, "/v1/me")
        .describe(
            "Tell who the current token acts as: its kind (`org`, `agent` or `participant`), \
             its org, and the agent or room it is bound to. Call this first to learn your own \
             agent id.",
        )
        .callers(Callers::ORG.and(Callers::MEMBER))
        .handle(handle)
}

async fn handle(_ctx: Ctx, caller: Caller, _input: NoInput) -> ApiResult<Reply<Whoami>> {
    let kind = caller.kind().ok_or_else(|| ApiError::unauthorized("no token"))?;
    let org_id = caller.org()?;
    let mut me = Whoami {
        kind,
        org_id,
        agent_id: None,
        agent_name: None,
        room_id: None,
        participant_id: None,
    };
    match caller {
        Caller::Agent { agent_id, agent_name, .. } => {
            me.agent_id = Some(agent_id);
            me.agent_name = Some(agent_name);
        }
        Caller::Participant { room_id, member_id, .. } => {
            me.room_id = Some(room_id);
            me.participant_id = Some(member_id);
        }
        Caller::Org { .. } | Caller::Channel { .. } | Caller::Anonymous => {}
    }
    Ok(Reply::ok(me))
}
