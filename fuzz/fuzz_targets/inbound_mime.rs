//! Inbound mail: `mail::inbound::parse` on any bytes a channel may receive.
//!
//! It never panics and always yields something to store: a message with neither a Message-ID
//! nor a sender carries a warning, a message of which nothing could be read is kept whole as
//! text, header values are cut to their limit, and no stored text holds a NUL character, which Postgres refuses in text and
//! JSON columns alike.

#![no_main]

use kapable_comms::mail::inbound::{self, Parsed};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The longest header value kept, in bytes, as documented in `mail::inbound`.
const HEADER_VALUE_MAX: usize = 4096;

fuzz_target!(
    init: {
        // libfuzzer-sys aborts in its panic hook, before unwinding, but `inbound::parse` catches
        // a panic of the MIME parser as the server would; the default hook lets it. A panic that
        // escapes the target still ends the run: libfuzzer-sys catches it and aborts.
        drop(std::panic::take_hook());
    },
    |raw: &[u8]| check(raw)
);

fn check(raw: &[u8]) {
    let parsed = inbound::parse(raw);

    if parsed.warning.is_none() {
        assert!(parsed.message_id.is_some() && parsed.from.is_some(), "{parsed:?}");
    }
    let read_nothing = parsed.message_id.is_none()
        && parsed.from.is_none()
        && parsed.to.is_empty()
        && parsed.subject.is_none();
    if read_nothing {
        let text = String::from_utf8_lossy(raw).replace('\0', "\u{fffd}");
        assert!(parsed.warning.is_some(), "{parsed:?}");
        assert_eq!(parsed.body_text, Some(text), "a message read as nothing is kept as text");
    }
    for (name, value) in &parsed.headers {
        assert_eq!(*name, name.to_ascii_lowercase());
        let values = match value {
            Value::Array(values) => values.iter().collect(),
            single => vec![single],
        };
        for value in values {
            let text = value.as_str().expect("header values are text");
            assert!(text.len() <= HEADER_VALUE_MAX, "{name}: {} bytes", text.len());
        }
    }
    assert!(parsed.attachments.iter().all(|a| a.size >= 0 && !a.content_type.is_empty()));
    for text in texts(&parsed) {
        assert!(!text.contains('\0'), "a NUL in {text:?}");
    }
}

/// Every text the store writes for a parsed message.
fn texts(parsed: &Parsed) -> Vec<&str> {
    let optional = [
        &parsed.message_id,
        &parsed.in_reply_to,
        &parsed.from,
        &parsed.subject,
        &parsed.body_text,
        &parsed.body_html,
        &parsed.warning,
    ];
    let mut texts: Vec<&str> = optional.into_iter().flatten().map(String::as_str).collect();
    let lists = [&parsed.references, &parsed.to, &parsed.cc];
    texts.extend(lists.into_iter().flatten().map(String::as_str));
    for attachment in &parsed.attachments {
        texts.extend(attachment.name.as_deref());
        texts.push(&attachment.content_type);
    }
    for (name, value) in &parsed.headers {
        texts.push(name);
        match value {
            Value::Array(values) => texts.extend(values.iter().filter_map(Value::as_str)),
            single => texts.extend(single.as_str()),
        }
    }
    texts
}
