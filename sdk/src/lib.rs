//! Typed client and wire types for the kapable-comms gateway.
//!
//! The gateway serves one set of operations over REST, MCP and OpenAPI; this crate owns the
//! request and response types of every operation, so the server and its clients cannot drift.
//!
//! ```no_run
//! use kapable_sdk::comms::types::*;
//!
//! # async fn tour() -> Result<(), kapable_sdk::Error> {
//! let client = kapable_sdk::Client::new("http://127.0.0.1:8787", "kap_...");
//! let agent = client
//!     .comms()
//!     .create_agent(CreateAgentRequest {
//!         name: "support-bot".into(),
//!         description: Some("Customer support automation".into()),
//!         ..Default::default()
//!     })
//!     .await?;
//! let key = client
//!     .comms()
//!     .mint_agent_key(agent.id, MintAgentKeyRequest { label: "production".into() })
//!     .await?;
//! println!("give this key to the agent once: {}", key.key);
//! # Ok(())
//! # }
//! ```

mod client;
pub mod comms;
mod error;
mod stream;

pub use client::Client;
pub use error::{ApiErrorBody, Error, ErrorEnvelope};
