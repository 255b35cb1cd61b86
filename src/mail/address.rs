//! Email addresses: parsed, checked, and normalised with the domain in lower case.

use std::fmt;

use crate::error::ApiError;

/// The longest address accepted (RFC 5321's path limit).
const MAX_LEN: usize = 254;

/// A checked email address: `local@domain`, the domain in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    /// Parses the address given in `field`; the error says what is wrong with it.
    pub fn parse(field: &str, text: &str) -> Result<Address, ApiError> {
        let text = text.trim();
        let invalid = |why: &str| ApiError::invalid_field(field, format!("`{text}` {why}"));
        if text.len() > MAX_LEN {
            return Err(invalid("is longer than 254 characters"));
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err(invalid("is not an email address: it has no `@`"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("needs 1 to 64 characters before the `@`"));
        }
        let local_ok = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
        if !local.chars().all(local_ok) || local.starts_with('.') || local.ends_with('.') {
            return Err(invalid("has characters before the `@` that an address cannot have"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(invalid("needs a domain such as `example.com` after the `@`"));
        }
        Ok(Address(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_lower_cased_and_the_local_part_kept() {
        let address = Address::parse("address", " Support.Team@Agents.Example.COM ").unwrap();
        assert_eq!(address.as_str(), "Support.Team@agents.example.com");
    }

    #[test]
    fn malformed_addresses_are_refused_naming_the_field() {
        for text in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            ".a@example.com",
            "a@example..com",
        ] {
            let error = Address::parse("address", text).unwrap_err();
            assert!(error.message.starts_with("`address`"), "{text}: {}", error.message);
        }
    }
}
