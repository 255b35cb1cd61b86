//! Checks shared by operations on text and JSON fields; each error names its field.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// The longest name of an agent or a room.
pub const NAME_MAX: usize = 100;
/// The longest description of an agent or a room.
pub const DESCRIPTION_MAX: usize = 1000;
/// The largest metadata object, in bytes of JSON.
pub const METADATA_MAX_BYTES: usize = 16 * 1024;

/// A required name: at most `max` characters, no control characters, trimmed, not empty.
pub fn name<'a>(field: &str, value: &'a str, max: usize) -> ApiResult<&'a str> {
    // The length counts the text as sent, as the `maxLength` of the schemas does.
    let value = text(field, value, max)?.trim();
    if value.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    Ok(value)
}

/// Free text of at most `max` characters, no control characters other than line breaks and tabs.
pub fn text<'a>(field: &str, value: &'a str, max: usize) -> ApiResult<&'a str> {
    let count = value.chars().count();
    if count > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {max} characters, got {count}"),
        ));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(ApiError::invalid_field(field, "must not contain control characters"));
    }
    Ok(value)
}

/// An optional description of at most [`DESCRIPTION_MAX`] characters.
pub fn optional_text<'a>(field: &str, value: Option<&'a str>) -> ApiResult<Option<&'a str>> {
    value.map(|v| text(field, v, DESCRIPTION_MAX)).transpose()
}

/// An optional `metadata` object of at most [`METADATA_MAX_BYTES`]; `{}` when absent.
pub fn metadata(value: Option<&Value>) -> ApiResult<Value> {
    match value {
        Some(value) => Ok(object("metadata", value, METADATA_MAX_BYTES)?.clone()),
        None => Ok(Value::Object(Default::default())),
    }
}

/// A JSON object of at most `max_bytes` once serialized.
pub fn object<'a>(field: &str, value: &'a Value, max_bytes: usize) -> ApiResult<&'a Value> {
    if !value.is_object() {
        return Err(ApiError::invalid_field(field, "must be a JSON object"));
    }
    let size = value.to_string().len();
    if size > max_bytes {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {max_bytes} bytes of JSON, got {size}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_are_trimmed_and_must_not_be_empty() {
        assert_eq!(name("name", "  bot ", 10).unwrap(), "bot");
        assert!(name("name", "   ", 10).is_err());
        assert!(name("name", "abcdefghijk", 10).is_err());
        assert!(name("name", "a\u{0}b", 10).is_err());
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(object("metadata", &json!({"a": 1}), 100).is_ok());
        assert!(object("metadata", &json!([1]), 100).is_err());
        assert!(object("metadata", &json!({"a": "x".repeat(200)}), 100).is_err());
    }
}
