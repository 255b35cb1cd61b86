//! Token parsing: `PresentedToken::parse` and the bearer header it is read from.
//!
//! Whatever the text, parsing never panics, and a token it accepts has the shape every secret
//! has: its kind's prefix and then 43 ASCII letters or digits, hashed as the whole string. A
//! token built in that shape is always accepted as its kind.

#![no_main]

use kapable_comms::auth::{self, MalformedToken, PresentedToken, TokenKind};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// Characters after the prefix, as documented in `auth::token`.
const RANDOM_CHARS: usize = 43;

// The bytes are read three ways: as the text of a token, as an `Authorization` header, and as
// the kind and characters of a well-formed token.
fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(text);
    }
    check_header(data);
    if let Some((kind, chars)) = data.split_first() {
        if let Some(chars) = chars.first_chunk::<RANDOM_CHARS>() {
            check_shaped(*kind, chars);
        }
    }
});

fn check_text(text: &str) {
    match PresentedToken::parse(text) {
        Ok(token) => {
            let body = text.strip_prefix(token.kind.prefix()).expect("the kind's prefix");
            assert_eq!(body.len(), RANDOM_CHARS, "{text:?}");
            assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()), "{text:?}");
            assert_eq!(token.hash(), <[u8; 32]>::from(Sha256::digest(text)));
        }
        Err(MalformedToken::UnknownPrefix) => {
            assert!(!TokenKind::ALL.iter().any(|kind| text.starts_with(kind.prefix())), "{text:?}");
        }
        Err(MalformedToken::BadBody) => {
            assert!(TokenKind::ALL.iter().any(|kind| text.starts_with(kind.prefix())), "{text:?}");
        }
    }
}

fn check_shaped(kind: u8, chars: &[u8; RANDOM_CHARS]) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let kind = TokenKind::ALL[usize::from(kind) % TokenKind::ALL.len()];
    let body: String =
        chars.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect();
    let text = format!("{}{body}", kind.prefix());
    let token = PresentedToken::parse(&text).expect("a token of the documented shape parses");
    assert_eq!(token.kind, kind);
}

fn check_header(bytes: &[u8]) {
    let Ok(value) = http::HeaderValue::from_bytes(bytes) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    if let Ok(Some(token)) = auth::bearer(&headers) {
        assert!(bytes.starts_with(b"Bearer "));
        assert_eq!(token, token.trim(), "the token is trimmed");
        check_text(token);
    }
}
