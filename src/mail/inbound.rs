//! Inbound mail: a raw RFC 5322 message turned into what a mailbox stores.
//!
//! Parsing is mail-parser's; this module decides what is kept. Nothing is dropped: a message
//! the parser cannot read is stored with its text as the body and a warning saying so. Every
//! NUL character becomes U+FFFD, as a byte that is not UTF-8 does, since Postgres stores neither
//! in a text or JSON column.

use kapable_sdk::comms::types::Attachment;
use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use serde_json::{Map, Value};

/// The largest raw message accepted, in bytes.
pub const MAX_RAW_BYTES: usize = 25 * 1024 * 1024;
/// Header values longer than this are cut in the stored header map.
const HEADER_VALUE_MAX: usize = 4096;

/// What is kept of a received message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To`, the first id.
    pub in_reply_to: Option<String>,
    /// `References`, oldest first.
    pub references: Vec<String>,
    /// The sender as `Name <address>` or a bare address.
    pub from: Option<String>,
    /// `To` recipients.
    pub to: Vec<String>,
    /// `Cc` recipients.
    pub cc: Vec<String>,
    /// The subject, decoded.
    pub subject: Option<String>,
    /// The first text body, decoded to UTF-8.
    pub body_text: Option<String>,
    /// The first HTML body, decoded to UTF-8.
    pub body_html: Option<String>,
    /// The attachments, without content.
    pub attachments: Vec<Attachment>,
    /// Every header, by lower-cased name; repeated headers as arrays.
    pub headers: Map<String, Value>,
    /// What could not be read, if anything.
    pub warning: Option<String>,
}

/// Parses a raw message. Never fails: unreadable input is kept as text with a warning.
pub fn parse(raw: &[u8]) -> Parsed {
    // The parser reads bytes from anyone; should it panic on some (a debug build of
    // mail-parser 0.11 asserts on certain nested parts), the message is still kept.
    let parsed = std::panic::catch_unwind(|| read(raw)).unwrap_or_else(|_| {
        tracing::warn!("the MIME parser panicked; the message is kept as text");
        unreadable(raw, "the MIME parser failed on this message; kept as text")
    });
    without_nul(parsed)
}

fn read(raw: &[u8]) -> Parsed {
    let Some(message) = MessageParser::default().parse(raw) else {
        return unreadable(raw, "the message could not be parsed as MIME; kept as text");
    };
    let mut parsed = Parsed {
        message_id: message.message_id().map(str::to_owned),
        in_reply_to: ids(message.in_reply_to()).into_iter().next(),
        references: ids(message.references()),
        from: message.from().and_then(|a| addresses(a).into_iter().next()),
        to: message.to().map(addresses).unwrap_or_default(),
        cc: message.cc().map(addresses).unwrap_or_default(),
        subject: message.subject().map(str::to_owned),
        body_text: message.body_text(0).map(std::borrow::Cow::into_owned),
        body_html: message.body_html(0).map(std::borrow::Cow::into_owned),
        attachments: message.attachments().map(attachment).collect(),
        headers: headers(message.headers_raw()),
        warning: None,
    };
    // Judged by what was read rather than by which headers are there: a `From` without an
    // address, say, would otherwise leave nothing of the message stored.
    let read_nothing = parsed.message_id.is_none()
        && parsed.from.is_none()
        && parsed.to.is_empty()
        && parsed.subject.is_none();
    if read_nothing {
        return unreadable(
            raw,
            "the message has none of From, To, Subject or Message-ID; kept as text",
        );
    }

    let mut missing = Vec::new();
    if parsed.message_id.is_none() {
        missing.push("Message-ID");
    }
    if parsed.from.is_none() {
        missing.push("From");
    }
    if !missing.is_empty() {
        parsed.warning = Some(format!("missing or unreadable header: {}", missing.join(", ")));
    }
    parsed
}

fn unreadable(raw: &[u8], warning: &str) -> Parsed {
    Parsed {
        body_text: Some(String::from_utf8_lossy(raw).into_owned()),
        warning: Some(warning.to_owned()),
        ..Parsed::default()
    }
}

fn without_nul(mut parsed: Parsed) -> Parsed {
    let optional = [
        &mut parsed.message_id,
        &mut parsed.in_reply_to,
        &mut parsed.from,
        &mut parsed.subject,
        &mut parsed.body_text,
        &mut parsed.body_html,
    ];
    let lists = [&mut parsed.references, &mut parsed.to, &mut parsed.cc];
    optional.into_iter().flatten().chain(lists.into_iter().flatten()).for_each(replace_nul);
    for attachment in &mut parsed.attachments {
        attachment.name.iter_mut().chain([&mut attachment.content_type]).for_each(replace_nul);
    }
    parsed
}

fn replace_nul(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{fffd}");
    }
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(ids) => ids.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    }
}

fn addresses(address: &Address<'_>) -> Vec<String> {
    address
        .iter()
        .filter_map(|addr| {
            let email = addr.address()?;
            Some(match addr.name() {
                Some(name) if !name.is_empty() => format!("{name} <{email}>"),
                _ => email.to_owned(),
            })
        })
        .collect()
}

fn attachment(part: &mail_parser::MessagePart<'_>) -> Attachment {
    let content_type = part.content_type().map_or_else(
        || "application/octet-stream".to_owned(),
        |ct| match ct.subtype() {
            Some(subtype) => format!("{}/{subtype}", ct.ctype()),
            None => ct.ctype().to_owned(),
        },
    );
    Attachment {
        name: part.attachment_name().map(str::to_owned),
        content_type,
        size: i64::try_from(part.contents().len()).unwrap_or(i64::MAX),
    }
}

fn headers<'a>(raw: impl Iterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in raw {
        let (mut name, mut value) = (name.to_ascii_lowercase(), value.trim().to_owned());
        replace_nul(&mut name);
        replace_nul(&mut value);
        if value.len() > HEADER_VALUE_MAX {
            let cut =
                (0..=HEADER_VALUE_MAX).rev().find(|i| value.is_char_boundary(*i)).unwrap_or(0);
            value.truncate(cut);
        }
        match map.get_mut(&name) {
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(single) => *single = Value::Array(vec![single.take(), Value::String(value)]),
            None => {
                map.insert(name, Value::String(value));
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTIPART: &str = "From: \"Ada L.\" <ada@example.com>\r\n\
        To: support@agents.example.com, Bob <bob@example.com>\r\n\
        Cc: carol@example.com\r\n\
        Subject: =?UTF-8?B?Q2Fmw6kgb3JkZXI=?=\r\n\
        Message-ID: <abc@example.com>\r\n\
        In-Reply-To: <prev@example.com>\r\n\
        References: <root@example.com> <prev@example.com>\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
        --b1\r\n\
        Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
        --b2\r\n\
        Content-Type: text/plain; charset=iso-8859-1\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\n\
        Caf=E9 =3D coffee\r\n\
        --b2\r\n\
        Content-Type: text/html; charset=utf-8\r\n\r\n\
        <p>Caf\u{e9}</p>\r\n\
        --b2--\r\n\
        --b1\r\n\
        Content-Type: application/pdf; name=\"invoice.pdf\"\r\n\
        Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n\
        JVBERi0xLjQK\r\n\
        --b1--\r\n";

    #[test]
    fn a_multipart_message_yields_its_parts_threading_and_decoded_text() {
        let parsed = parse(MULTIPART.as_bytes());
        assert_eq!(parsed.message_id.as_deref(), Some("abc@example.com"));
        assert_eq!(parsed.in_reply_to.as_deref(), Some("prev@example.com"));
        assert_eq!(parsed.references, ["root@example.com", "prev@example.com"]);
        assert_eq!(parsed.from.as_deref(), Some("Ada L. <ada@example.com>"));
        assert_eq!(parsed.to, ["support@agents.example.com", "Bob <bob@example.com>"]);
        assert_eq!(parsed.cc, ["carol@example.com"]);
        assert_eq!(parsed.subject.as_deref(), Some("Café order"));
        assert_eq!(parsed.body_text.as_deref().map(str::trim), Some("Café = coffee"));
        assert!(parsed.body_html.unwrap().contains("<p>Café</p>"));
        assert_eq!(parsed.attachments.len(), 1);
        let pdf = &parsed.attachments[0];
        assert_eq!(
            (pdf.name.as_deref(), pdf.content_type.as_str(), pdf.size),
            (Some("invoice.pdf"), "application/pdf", 9)
        );
        assert_eq!(parsed.warning, None);
        assert_eq!(parsed.headers["message-id"], "<abc@example.com>");
    }

    #[test]
    fn a_message_without_headers_is_kept_as_text_with_a_warning() {
        let parsed = parse(b"\x00\xff just some bytes, no headers at all");
        assert!(parsed.warning.is_some());
        assert!(parsed.body_text.unwrap().contains("just some bytes"));
    }

    #[test]
    fn headers_that_yield_no_address_subject_or_id_are_kept_as_text() {
        for raw in [&b"From: Ada"[..], b"From:\xdd\xbe <a\x00re t\x01his", b"To: nobody\r\n\r\nhi"]
        {
            let parsed = parse(raw);
            assert!(parsed.warning.unwrap().contains("kept as text"), "{raw:?}");
            assert_eq!(
                parsed.body_text.unwrap(),
                String::from_utf8_lossy(raw).replace('\0', "\u{fffd}")
            );
        }
    }

    #[test]
    fn a_message_the_parser_panics_on_is_kept_as_text() {
        // A debug build of mail-parser 0.11 asserts on this; a release build reads something.
        let raw =
            b"Content-Type:multipart;boundary=outer\n\n--outerContent-Type:message/rfc822\n\n\
            Content-Type:message/rfc822\n\n\n--outer--";
        let parsed = parse(raw);
        assert!(parsed.warning.is_some());
        assert!(parsed.body_text.is_some() || parsed.headers.contains_key("content-type"));
    }

    #[test]
    fn nul_characters_are_kept_as_replacement_characters_in_every_stored_text() {
        let raw = b"From: a\x00b@example.com\r\nSubject: one\x00two\r\nX-N\x00: v\x00\r\n\
            Message-ID: <n\x00@example.com>\r\n\r\nbody\x00text\r\n";
        let parsed = parse(raw);
        assert_eq!(parsed.subject.as_deref(), Some("one\u{fffd}two"));
        assert_eq!(parsed.body_text.as_deref().map(str::trim), Some("body\u{fffd}text"));
        assert_eq!(parsed.headers["x-n\u{fffd}"], "v\u{fffd}");
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("\\0"), "{shown}");

        let garbage = parse(b"\x00\x00 no headers");
        assert_eq!(garbage.body_text.as_deref(), Some("\u{fffd}\u{fffd} no headers"));
    }

    #[test]
    fn missing_headers_are_named_in_the_warning() {
        let parsed = parse(b"Subject: hello\r\n\r\nbody\r\n");
        assert_eq!(parsed.subject.as_deref(), Some("hello"));
        let warning = parsed.warning.unwrap();
        assert!(warning.contains("Message-ID") && warning.contains("From"), "{warning}");
    }
}
