//! kapable-comms: an MCP-first gateway through which agents, bots and people talk.
//!
//! The core is one registry of typed operations ([`ops::all`]); the MCP tools, the REST routes
//! and the OpenAPI document are generated from it ([`http`]). Storage is SQLite by default and
//! Postgres when the database URL says so ([`store`]).

pub mod admin;
pub mod auth;
pub mod bridge;
pub mod cli;
pub mod config;
pub mod error;
pub mod fanout;
pub mod follow;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod ops;
pub mod pagination;
pub mod registry;
pub mod server;
pub mod state;
pub mod stdio;
pub mod store;
