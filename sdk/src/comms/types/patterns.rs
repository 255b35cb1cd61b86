//! Patterns that the request types put in their JSON Schemas, so that a schema admits the text
//! the gateway admits and no other.
//!
//! Control characters are those of Unicode's `Cc` category, as `char::is_control` counts them;
//! white space is spelled out as `char::is_whitespace` counts it, since regex engines disagree
//! on what `\s` holds.

/// Text with no control characters other than tab, line feed and carriage return.
pub(crate) const TEXT: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";

/// Like [`TEXT`], with at least one character that is not white space: names are trimmed and
/// must not be empty.
pub(crate) const NAME: &str = concat!(
    r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*",
    r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$",
);

/// Any text with a character that is not white space.
pub(crate) const NOT_BLANK: &str = concat!(
    r"[^\u0009-\u000D\u0020\u0085\u00A0",
    r"\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
);

/// A page cursor: 16 bytes in unpadded base64url, the form `next_cursor` takes.
pub(crate) const CURSOR: &str = r"^[A-Za-z0-9_-]{21}[AQgw]$";

/// A position in a room's messages: a message's `seq`, in decimal.
pub(crate) const SEQ: &str = r"^[0-9]{1,18}$";

/// An email address as the gateway checks it: 1 to 64 characters of the RFC 5322 atom set and
/// dots (not first or last) before the `@`, and a domain of two or more labels of letters,
/// digits and inner hyphens.
pub(crate) const ADDRESS: &str = concat!(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{0,62}",
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-])?",
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+",
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
);

/// A webhook URL: https, or http to a loopback host; an optional port, then a path, query or
/// fragment with no white space.
pub(crate) const WEBHOOK_URL: &str = concat!(
    r"^(https://[^\[\]@/?#:\u0000-\u0020\u007F-\u00A0",
    r"\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+",
    r"|http://(127\.0\.0\.1|localhost))(:[0-9]{1,5})?",
    r"([/?#][^\u0009-\u000D\u0020\u0085\u00A0",
    r"\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
);

/// A message kind such as `text`.
pub(crate) const KIND: &str = r"^[a-z0-9_.-]{1,32}$";

/// One line: no carriage return or line feed.
pub(crate) const ONE_LINE: &str = r"^[^\r\n]*$";
