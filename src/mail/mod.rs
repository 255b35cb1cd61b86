//! Email: parsing what arrives, and (with the outbox) sending what agents write.

pub mod address;
pub mod compose;
pub mod inbound;
pub mod outbox;
pub mod policy;
pub mod webhook;
