//! Every operation of the API, one module per resource.
//!
//! Adding an operation means writing it in its module and adding one line to [`all`]; the MCP
//! tools, REST routes and OpenAPI document follow from this list alone.

mod agent_keys;
mod agents;
mod app_tokens;
mod me;
mod validate;

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::registry::Operation;

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
