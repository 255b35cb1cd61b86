//! Every operation of the API, one module per resource.
//!
//! Adding an operation means writing it in its module and adding one line to [`all`]; the MCP
//! tools, REST routes and OpenAPI document follow from this list alone.

mod agent_keys;
mod agents;
mod app_tokens;
mod events;
mod mail;
mod me;
mod rooms;
mod send;
mod sending;
pub(crate) mod validate;

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::registry::Operation;

pub use rooms::{access as room_access, sweep_presence};

/// The registry: every operation, in the order the OpenAPI document and tool list show them.
pub fn all() -> &'static [Operation] {
    static ALL: LazyLock<Vec<Operation>> = LazyLock::new(|| {
        vec![
            me::whoami(),
            agents::create_agent(),
            agents::list_agents(),
            agents::delete_agent(),
            agent_keys::mint_agent_key(),
            agent_keys::list_agent_keys(),
            agent_keys::revoke_agent_key(),
            app_tokens::mint_app_token(),
            app_tokens::list_app_tokens(),
            app_tokens::revoke_app_token(),
            rooms::create_room(),
            rooms::list_rooms(),
            rooms::get_room(),
            rooms::join_room(),
            rooms::create_room_invite(),
            rooms::list_room_invites(),
            rooms::revoke_room_invite(),
            rooms::invite_agent_to_room(),
            rooms::revoke_room_agent(),
            rooms::post_room_message(),
            rooms::list_room_messages(),
            rooms::annotate_message(),
            rooms::heartbeat(),
            rooms::room_presence(),
            rooms::link_telegram(),
            rooms::telegram_setup_url(),
            rooms::list_bridges(),
            rooms::revoke_bridge(),
            mail::create_mailbox(),
            mail::delete_mailbox(),
            mail::list_agent_mailboxes(),
            mail::create_channel(),
            mail::list_channels(),
            mail::receive_email(),
            mail::list_mailbox_messages(),
            send::send_email(),
            mail::get_message(),
            sending::get_mailbox_quotas(),
            sending::set_mailbox_quotas(),
            sending::delete_mailbox_quotas(),
            sending::list_rate_limit_hits(),
            sending::list_send_audit(),
            sending::list_anomalies(),
            sending::list_webhook_deliveries(),
            events::wait_for_events(),
            events::create_stream_ticket(),
        ]
    });
    &ALL
}

/// The operation of this name, if there is one.
pub fn find(name: &str) -> Option<&'static Operation> {
    all().iter().find(|op| op.name == name)
}

/// The input of an operation that takes none.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct NoInput {}
