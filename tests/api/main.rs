//! Integration tests: the real server on a free port, a fresh database per test.
//!
//! Every scenario runs on SQLite, and on Postgres too when `TEST_DATABASE_URL` names a server
//! (`postgres://postgres@127.0.0.1:5432/`); each test then gets a database of its own.

mod helpers;
mod process;
mod sse;

mod agents;
mod cli;
mod crash;
mod database_loss;
mod events;
mod fanout;
mod hygiene;
mod keys;
mod limits;
mod mail;
mod mcp;
mod openapi;
mod registry;
mod room_messages;
mod rooms;
mod rooms_roles;
mod send;
mod sending;
mod telegram;
