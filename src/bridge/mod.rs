//! Bridges to other chat networks. Telegram is the one there is.

pub mod telegram;
