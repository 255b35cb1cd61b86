//! Who is calling, and which kinds of caller an operation admits.

use kapable_sdk::comms::types::CallerKind;
use uuid::Uuid;

use crate::error::ApiError;

/// The identity behind a request, resolved from its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credential was presented.
    Anonymous,
    /// An org app token: acts for the whole org, and as owner in each of its rooms.
    Org {
        /// The org.
        org_id: Uuid,
        /// The token used.
        token_id: Uuid,
    },
    /// An agent key: acts as that agent.
    Agent {
        /// The agent's org.
        org_id: Uuid,
        /// The agent.
        agent_id: Uuid,
        /// The agent's name.
        agent_name: String,
        /// The key used.
        key_id: Uuid,
    },
    /// A participant token: acts as one guest in one room, for that room's member operations.
    Participant {
        /// The room's org.
        org_id: Uuid,
        /// The one room the token works in.
        room_id: Uuid,
        /// The participant it acts as.
        member_id: Uuid,
    },
    /// A mailbox channel's secret: may deliver raw mail to that channel and nothing else.
    Channel {
        /// The channel's org.
        org_id: Uuid,
        /// The channel.
        channel_id: Uuid,
        /// Its mailbox.
        mailbox_id: Uuid,
        /// Whether it is an `email` channel (one that receives mail).
        email: bool,
    },
}

impl Caller {
    /// The kind of credential, or `None` for an anonymous caller.
    pub fn kind(&self) -> Option<CallerKind> {
        match self {
            Caller::Anonymous => None,
            Caller::Org { .. } => Some(CallerKind::Org),
            Caller::Agent { .. } => Some(CallerKind::Agent),
            Caller::Participant { .. } => Some(CallerKind::Participant),
            Caller::Channel { .. } => Some(CallerKind::Channel),
        }
    }

    /// The credential presented: the app token's, agent key's, participant's or channel's id.
    pub fn credential_id(&self) -> Option<Uuid> {
        match self {
            Caller::Anonymous => None,
            Caller::Org { token_id: id, .. }
            | Caller::Agent { key_id: id, .. }
            | Caller::Participant { member_id: id, .. }
            | Caller::Channel { channel_id: id, .. } => Some(*id),
        }
    }

    /// The caller's org, or `None` for an anonymous caller.
    pub fn org_id(&self) -> Option<Uuid> {
        match self {
            Caller::Anonymous => None,
            Caller::Org { org_id, .. }
            | Caller::Agent { org_id, .. }
            | Caller::Participant { org_id, .. }
            | Caller::Channel { org_id, .. } => Some(*org_id),
        }
    }

    /// The caller's org; operations that admit only authenticated callers use this.
    pub fn org(&self) -> Result<Uuid, ApiError> {
        self.org_id().ok_or_else(|| ApiError::unauthorized("this operation needs a token"))
    }

    /// The org, if the caller is an org app token acting for it; otherwise a 403.
    pub fn require_org(&self) -> Result<Uuid, ApiError> {
        match self {
            Caller::Org { org_id, .. } => Ok(*org_id),
            _ => Err(ApiError::forbidden("this operation needs an org app token (kap_...)")),
        }
    }

    /// Checks that the caller is the org of `org_id`. Another org's id answers 404, so that
    /// whether it exists never leaks.
    pub fn require_own_org(&self, org_id: Uuid) -> Result<Uuid, ApiError> {
        let own = self.require_org()?;
        if own == org_id { Ok(own) } else { Err(ApiError::not_found("org")) }
    }
}

/// The set of caller kinds an operation admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Callers(u8);

impl Callers {
    /// No token needed.
    pub const ANYONE: Callers = Callers(1);
    /// Org app tokens.
    pub const ORG: Callers = Callers(2);
    /// Agent keys.
    pub const AGENT: Callers = Callers(4);
    /// Members of the room the operation names: agent keys of member agents and participant
    /// tokens of that room. The operation checks the membership itself.
    pub const MEMBER: Callers = Callers(4 | 8);
    const PARTICIPANT: Callers = Callers(8);
    /// Channel secrets, for the channel the operation names.
    pub const CHANNEL: Callers = Callers(16);

    /// Both sets together.
    pub const fn and(self, other: Callers) -> Callers {
        Callers(self.0 | other.0)
    }

    /// Whether the operation needs no credential at all.
    pub fn is_public(self) -> bool {
        self.0 & Self::ANYONE.0 != 0
    }

    /// Whether a caller of this kind may call the operation.
    pub fn admits(self, kind: Option<CallerKind>) -> bool {
        let bit = match kind {
            None => Self::ANYONE,
            Some(CallerKind::Org) => Self::ORG,
            Some(CallerKind::Agent) => Self::AGENT,
            Some(CallerKind::Participant) => Self::PARTICIPANT,
            Some(CallerKind::Channel) => Self::CHANNEL,
        };
        self.is_public() || self.0 & bit.0 != 0
    }

    /// The kinds admitted, in words, for descriptions and error messages.
    pub fn describe(self) -> String {
        let mut kinds = Vec::new();
        if self.is_public() {
            return "anyone".to_owned();
        }
        if self.0 & Self::CHANNEL.0 != 0 {
            kinds.push("the channel's secret (chs_...)");
        }
        if self.0 & Self::ORG.0 != 0 {
            kinds.push("an org app token (kap_...)");
        }
        if self.0 & Self::PARTICIPANT.0 != 0 {
            kinds.push("the key of a member agent (ak_...) or a participant token (pt_...)");
        } else if self.0 & Self::AGENT.0 != 0 {
            kinds.push("an agent key (ak_...)");
        }
        kinds.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_only_operation_admits_org_tokens_alone() {
        let org = Callers::ORG;
        assert!(org.admits(Some(CallerKind::Org)));
        assert!(!org.admits(Some(CallerKind::Agent)));
        assert!(!org.admits(None));
    }

    #[test]
    fn a_member_operation_admits_agents_and_participants_but_not_anonymous_callers() {
        let member = Callers::ORG.and(Callers::MEMBER);
        assert!(member.admits(Some(CallerKind::Participant)));
        assert!(member.admits(Some(CallerKind::Agent)));
        assert!(!member.admits(None));
        assert!(!Callers::AGENT.admits(Some(CallerKind::Participant)));
    }

    #[test]
    fn a_public_operation_admits_everyone() {
        assert!(Callers::ANYONE.admits(None));
        assert!(Callers::ANYONE.admits(Some(CallerKind::Agent)));
    }

    #[test]
    fn another_orgs_id_is_not_found_rather_than_forbidden() {
        let caller = Caller::Org { org_id: Uuid::now_v7(), token_id: Uuid::now_v7() };
        let error = caller.require_own_org(Uuid::now_v7()).unwrap_err();
        assert_eq!(error.status, axum::http::StatusCode::NOT_FOUND);
    }
}
