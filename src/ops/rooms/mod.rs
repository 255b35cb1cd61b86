//! Rooms: who may do what in a room, and the room operations built on it.
//!
//! Every room operation starts with [`access`], which finds the room in the caller's org and the
//! caller's role in it: an org app token acts as owner; an agent key acts as that agent's live
//! membership; a participant token acts only in its own room. A room the caller cannot see
//! answers 404 (it never learns whether the room exists); a role too weak for the operation
//! answers 403 naming the role needed.

mod annotations;
mod bridges;
mod invites;
mod members;
mod messages;
mod presence;
mod room;

pub(super) use annotations::annotate_message;
pub(super) use bridges::{link_telegram, list_bridges, revoke_bridge, telegram_setup_url};
pub(super) use invites::{create_room_invite, join_room, list_room_invites, revoke_room_invite};
pub(super) use members::{invite_agent_to_room, revoke_room_agent};
pub(super) use messages::{list_room_messages, post_room_message};
pub use presence::sweep_presence;

pub(super) use presence::{heartbeat, room_presence};
pub(super) use room::{create_room, get_room, list_rooms};

use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;
use crate::store::{MemberRow, RoomRow};

/// A role in a room, weakest first, so that roles compare by strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads the room.
    Observer,
    /// Also posts and annotates.
    Participant,
    /// Also invites, and revokes participants and observers.
    Admin,
    /// Everything, including revoking admins and owners.
    Owner,
}

impl Role {
    /// Parses a role named in `field`; the error lists the roles.
    pub fn parse(field: &str, text: &str) -> ApiResult<Role> {
        match text {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "participant" => Ok(Role::Participant),
            "observer" => Ok(Role::Observer),
            _ => Err(ApiError::invalid_field(
                field,
                format!("`{text}` is not a role; use owner, admin, participant or observer"),
            )),
        }
    }

    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Participant => "participant",
            Role::Observer => "observer",
        }
    }

    /// The stored role of a membership; an unknown stored value reads as the weakest role.
    pub fn of(member: &MemberRow) -> Role {
        Role::parse("role", &member.role).unwrap_or(Role::Observer)
    }
}

/// Who acts in a room.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An org app token, acting as owner without a membership.
    Org(Uuid),
    /// A member: an agent of the org or a guest.
    Member(MemberRow),
}

/// The room a caller named, and what the caller may do in it.
#[derive(Debug, Clone)]
pub struct Access {
    /// The room.
    pub room: RoomRow,
    /// The caller's role in it.
    pub role: Role,
    /// Who the caller is in it.
    pub actor: Actor,
}

impl Access {
    /// Checks that the caller's role is at least `needed` for `action` (such as "post").
    pub fn require(&self, needed: Role, action: &str) -> ApiResult<()> {
        if self.role >= needed {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "to {action} you need the role {} or above in this room; you are {}",
            needed.as_str(),
            self.role.as_str()
        ))
        .with_details(serde_json::json!({ "needed": needed.as_str(), "role": self.role.as_str() })))
    }
}

/// Finds the room `room_id` and the caller's role in it.
pub async fn access(ctx: &Ctx, caller: &Caller, room_id: Uuid) -> ApiResult<Access> {
    let org_id = caller.org()?;
    let not_found = || ApiError::not_found("room you are a member of");
    let room = ctx.store.get_room(org_id, room_id).await?.ok_or_else(not_found)?;

    let member = match caller {
        Caller::Org { .. } => {
            return Ok(Access { room, role: Role::Owner, actor: Actor::Org(org_id) });
        }
        Caller::Agent { agent_id, .. } => ctx.store.agent_member(room_id, *agent_id).await?,
        Caller::Participant { room_id: own, member_id, .. } if *own == room_id => {
            ctx.store.member(room_id, *member_id).await?
        }
        Caller::Participant { .. } | Caller::Channel { .. } | Caller::Anonymous => None,
    };
    let member = member.ok_or_else(not_found)?;
    Ok(Access { room, role: Role::of(&member), actor: Actor::Member(member) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_compare_by_strength() {
        assert!(Role::Owner > Role::Admin);
        assert!(Role::Admin > Role::Participant);
        assert!(Role::Participant > Role::Observer);
    }

    #[test]
    fn a_role_parses_from_its_name_and_an_unknown_one_is_named() {
        for role in [Role::Owner, Role::Admin, Role::Participant, Role::Observer] {
            assert_eq!(Role::parse("role", role.as_str()).unwrap(), role);
        }
        let error = Role::parse("role", "boss").unwrap_err();
        assert!(error.message.contains("`role`") && error.message.contains("boss"));
    }
}
