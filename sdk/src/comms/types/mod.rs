//! Request and response types of every operation, shared by the server and its clients.
//!
//! Every field's doc comment becomes its description in the MCP tool schemas and the OpenAPI
//! document, so it says what the field means, its units and its default.

mod agents;
mod bridges;
mod common;
mod events;
mod identity;
mod mail;
mod patterns;
mod rooms;
mod sending;
mod tokens;

pub use agents::*;
pub use bridges::*;
pub use common::*;
pub use events::*;
pub use identity::*;
pub use mail::*;
pub use rooms::*;
pub use sending::*;
pub use tokens::*;
