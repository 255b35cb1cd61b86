//! Secrets: app tokens (`kap_`), agent keys (`ak_`) and participant tokens (`pt_`).
//!
//! A secret is its kind's prefix followed by 43 characters drawn uniformly from the 62 ASCII
//! letters and digits: 256 bits of entropy. A hash of a secret that strong needs no salt or
//! stretching, so the store keeps SHA-256 of the whole string and looks it up by that hash.
//! [`Secret`] never prints its text through `Debug`.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::NewCredential;

/// Random characters after the prefix: 43 base62 characters carry 256 bits.
const RANDOM_CHARS: usize = 43;
/// Characters after the prefix kept as the displayable `prefix` of a credential.
const SHOWN_CHARS: usize = 6;

/// What a secret grants; each kind has its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An org app token, `kap_...`.
    App,
    /// An agent key, `ak_...`.
    Agent,
    /// A room participant token, `pt_...`.
    Participant,
    /// A room invite token, `inv_...`: redeemed by `join_room`, never a credential.
    Invite,
    /// A single-use stream ticket, `tk_...`: accepted only as `?ticket=` on a stream.
    Ticket,
    /// A mailbox channel's secret, `chs_...`: delivers raw mail to that channel.
    Channel,
}

impl TokenKind {
    /// Every kind, in the order a presented token's prefix is tried.
    pub const ALL: [TokenKind; 6] = [
        TokenKind::App,
        TokenKind::Agent,
        TokenKind::Participant,
        TokenKind::Invite,
        TokenKind::Ticket,
        TokenKind::Channel,
    ];

    /// The prefix that starts every secret of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::App => "kap_",
            TokenKind::Agent => "ak_",
            TokenKind::Participant => "pt_",
            TokenKind::Invite => "inv_",
            TokenKind::Ticket => "tk_",
            TokenKind::Channel => "chs_",
        }
    }
}

/// A freshly generated secret: shown to its owner once, then only its hash is kept.
pub struct Secret {
    kind: TokenKind,
    text: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}…)", self.prefix())
    }
}

impl Secret {
    /// A new random secret of this kind.
    pub fn generate(kind: TokenKind) -> Self {
        let random: String =
            rand::rng().sample_iter(&Alphanumeric).take(RANDOM_CHARS).map(char::from).collect();
        Self { kind, text: format!("{}{random}", kind.prefix()) }
    }

    /// The whole secret, to hand to its owner once.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The start of the secret, safe to show in lists: the kind's prefix and a few characters.
    pub fn prefix(&self) -> String {
        self.text[..self.kind.prefix().len() + SHOWN_CHARS].to_owned()
    }

    /// The hash the store keeps.
    pub fn hash(&self) -> [u8; 32] {
        hash(&self.text)
    }

    /// The row that stores this secret: a new id, the label, the prefix and the hash.
    pub fn credential(&self, label: &str) -> NewCredential {
        NewCredential {
            id: Uuid::now_v7(),
            label: label.to_owned(),
            prefix: self.prefix(),
            hash: self.hash(),
        }
    }
}

/// A token as presented by a caller, checked for shape but not yet looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedToken<'a> {
    /// Which kind of secret it claims to be.
    pub kind: TokenKind,
    text: &'a str,
}

/// Why a presented token was refused before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    /// It does not start with `kap_`, `ak_` or `pt_`.
    #[error("a token starts with `kap_` (app token), `ak_` (agent key) or `pt_` (participant)")]
    UnknownPrefix,
    /// It has the right prefix but not the right length or characters.
    #[error("the token is truncated or contains characters that no token has")]
    BadBody,
}

impl<'a> PresentedToken<'a> {
    /// Checks the token's prefix, length and alphabet.
    pub fn parse(text: &'a str) -> Result<Self, MalformedToken> {
        let kind = TokenKind::ALL
            .into_iter()
            .find(|kind| text.starts_with(kind.prefix()))
            .ok_or(MalformedToken::UnknownPrefix)?;
        let body = &text[kind.prefix().len()..];
        if body.len() != RANDOM_CHARS || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedToken::BadBody);
        }
        Ok(Self { kind, text })
    }

    /// The hash to look the token up by.
    pub fn hash(&self) -> [u8; 32] {
        hash(self.text)
    }
}

fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_parses_back_with_the_same_kind_and_hash() {
        for kind in [
            TokenKind::App,
            TokenKind::Agent,
            TokenKind::Participant,
            TokenKind::Invite,
            TokenKind::Ticket,
            TokenKind::Channel,
        ] {
            let secret = Secret::generate(kind);
            let presented = PresentedToken::parse(secret.expose()).unwrap();
            assert_eq!(presented.kind, kind);
            assert_eq!(presented.hash(), secret.hash());
            assert!(secret.prefix().starts_with(kind.prefix()));
        }
    }

    #[test]
    fn two_secrets_differ() {
        let a = Secret::generate(TokenKind::Agent);
        let b = Secret::generate(TokenKind::Agent);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let secret = Secret::generate(TokenKind::App);
        let shown = format!("{secret:?}");
        assert!(!shown.contains(&secret.expose()[10..]), "{shown}");
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        assert_eq!(PresentedToken::parse("Bearer x"), Err(MalformedToken::UnknownPrefix));
        assert_eq!(PresentedToken::parse("ak_short"), Err(MalformedToken::BadBody));
        let bad_char = format!("ak_{}!", "a".repeat(RANDOM_CHARS - 1));
        assert_eq!(PresentedToken::parse(&bad_char), Err(MalformedToken::BadBody));
        let too_long = format!("kap_{}", "a".repeat(RANDOM_CHARS + 1));
        assert_eq!(PresentedToken::parse(&too_long), Err(MalformedToken::BadBody));
    }
}
