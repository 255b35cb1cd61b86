//! Who is calling.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kind of credential a request was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    /// An org app token (`kap_...`): acts for the whole org.
    Org,
    /// An agent key (`ak_...`): acts as one agent.
    Agent,
    /// A room participant token (`pt_...`): acts as one guest in one room.
    Participant,
    /// A mailbox channel's secret (`chs_...`): delivers raw mail to that channel only.
    Channel,
}

/// The identity behind the token of this request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Whoami {
    /// The kind of credential: `org`, `agent`, `participant` or `channel`.
    pub kind: CallerKind,
    /// The org the caller belongs to.
    pub org_id: Uuid,
    /// The agent this key acts as; only for `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
    /// The agent's name; only for `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// The room a participant token is confined to; only for `participant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<Uuid>,
    /// The participant this token acts as; only for `participant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<Uuid>,
}
