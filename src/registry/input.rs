//! An operation's input: merged from a REST request's path, query and body, and decoded.
//!
//! The REST input of an operation is the same JSON object as its tool input. Path and query
//! values arrive as text and are turned into the JSON type the input schema expects. A value
//! given in two places (path, query, body, `Idempotency-Key`) must be the same in both or the
//! input is refused, so a body never overrides a path parameter. An unknown field is refused by
//! name with the list of fields expected, since `deny_unknown_fields` does not combine with the
//! `flatten` that joins path ids to a request body.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::schema;
use crate::error::{ApiError, ApiResult};

/// The JSON type a field of the input expects, as far as text coercion cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Integer,
    Number,
    Boolean,
    Other,
}

/// The fields of an operation's input and their kinds.
#[derive(Debug, Clone, Default)]
pub struct InputShape {
    fields: BTreeMap<String, FieldKind>,
}

/// The parts of a REST request that make up an operation's input.
#[derive(Debug, Default)]
pub struct RawInput {
    /// Path parameters by name.
    pub path: Vec<(String, String)>,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
}

impl InputShape {
    /// The shape of input type `I`, read from its schema.
    pub fn of<I: JsonSchema>() -> Self {
        let schema = schema::standalone(super::schema::input_of::<I>, false);
        let properties = schema.get("properties").and_then(Value::as_object);
        let fields = properties
            .into_iter()
            .flatten()
            .map(|(name, property)| (name.clone(), kind_of(property)))
            .collect();
        Self { fields }
    }

    /// Whether the input has a field of this name.
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// The input's field names, in alphabetical order.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Merges path, query, body and idempotency key into one input object.
    pub fn merge(&self, raw: RawInput) -> ApiResult<Value> {
        let mut input = match raw.body {
            None => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(ApiError::invalid("the request body must be a JSON object")),
        };
        for (name, text) in raw.path {
            let value = self.coerce(&name, text)?;
            match input.get(&name) {
                Some(given) if *given != value => {
                    return Err(ApiError::invalid_field(
                        &name,
                        "the body's value contradicts the one in the path; leave it out of the body",
                    ));
                }
                _ => input.insert(name, value),
            };
        }
        let mut seen = Vec::new();
        for (name, text) in raw.query {
            if seen.contains(&name) {
                return Err(ApiError::invalid_field(&name, "is given more than once in the query"));
            }
            let value = self.coerce(&name, text)?;
            if input.get(&name).is_some_and(|given| *given != value) {
                return Err(ApiError::invalid_field(
                    &name,
                    "the query's value contradicts the one in the path or the body",
                ));
            }
            input.insert(name.clone(), value);
            seen.push(name);
        }
        if let Some(key) = raw.idempotency_key.filter(|_| self.has("idempotency_key")) {
            let key = Value::String(key);
            if input.get("idempotency_key").is_some_and(|given| *given != key) {
                return Err(ApiError::invalid_field(
                    "idempotency_key",
                    "the body's value contradicts the `Idempotency-Key` header; send one of them",
                ));
            }
            input.insert("idempotency_key".into(), key);
        }
        Ok(Value::Object(input))
    }

    /// Decodes a merged input, naming any unknown or malformed field.
    pub fn decode<I: DeserializeOwned>(&self, input: Value) -> ApiResult<I> {
        let input = match input {
            Value::Null => Value::Object(Map::new()),
            Value::Object(map) => Value::Object(self.whole_numbers(map)),
            _ => return Err(ApiError::invalid("the input must be a JSON object")),
        };
        if let Some((field, _)) = input.as_object().into_iter().flatten().find(|(_, v)| has_nul(v))
        {
            // Postgres stores no NUL in text or JSON; refusing it everywhere keeps both stores alike.
            return Err(ApiError::invalid_field(
                field,
                "must not contain the NUL character (U+0000)",
            ));
        }
        if let Some(unknown) = input.as_object().into_iter().flatten().find(|(k, _)| !self.has(k)) {
            let expected: Vec<&str> = self.field_names().collect();
            let expected = if expected.is_empty() { "none".into() } else { expected.join(", ") };
            return Err(ApiError::invalid(format!(
                "unknown field `{}`; the fields of this operation are: {expected}",
                unknown.0
            ))
            .with_details(
                json!({ "field": unknown.0, "expected": self.field_names().collect::<Vec<_>>() }),
            ));
        }
        serde_path_to_error::deserialize(input).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if path == "." {
                ApiError::invalid(inner.to_string())
            } else {
                ApiError::invalid_field(&path, inner)
            }
        })
    }

    /// Turns `5.0` into `5` in the integer fields: JSON Schema counts it as an integer, and so
    /// do clients whose numbers are all floating point.
    fn whole_numbers(&self, mut input: Map<String, Value>) -> Map<String, Value> {
        for (name, value) in &mut input {
            if self.fields.get(name) != Some(&FieldKind::Integer) || !value.is_f64() {
                continue;
            }
            let number = value.as_f64().unwrap_or(f64::NAN);
            // `i64::MAX as f64` rounds up to 2^63, which is out of range: the end is excluded.
            if number.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(&number) {
                *value = Value::from(number as i64);
            }
        }
        input
    }

    /// Turns a text value from the path or query into the JSON type its field expects.
    fn coerce(&self, name: &str, text: String) -> ApiResult<Value> {
        let kind = self.fields.get(name).copied().unwrap_or(FieldKind::Other);
        let parsed = match kind {
            FieldKind::Integer => text.parse::<i64>().ok().map(Value::from),
            FieldKind::Number => text.parse::<f64>().ok().map(Value::from),
            FieldKind::Boolean => text.parse::<bool>().ok().map(Value::from),
            FieldKind::Other => return Ok(Value::String(text)),
        };
        parsed.ok_or_else(|| {
            let expected = match kind {
                FieldKind::Integer => "an integer",
                FieldKind::Number => "a number",
                _ => "`true` or `false`",
            };
            ApiError::invalid_field(name, format!("must be {expected}, got `{text}`"))
        })
    }
}

/// Whether a JSON value holds U+0000 in any string or key.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(key, item)| key.contains('\0') || has_nul(item)),
        _ => false,
    }
}

/// The kind of a property schema: its `type`, ignoring `null` for optional fields.
fn kind_of(property: &Value) -> FieldKind {
    let types: Vec<&str> = match property.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    match types.iter().find(|t| **t != "null") {
        Some(&"integer") => FieldKind::Integer,
        Some(&"number") => FieldKind::Number,
        Some(&"boolean") => FieldKind::Boolean,
        _ => FieldKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct Body {
        name: String,
        #[serde(default)]
        limit: Option<u32>,
    }

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct Input {
        agent_id: uuid::Uuid,
        #[serde(flatten)]
        body: Body,
    }

    fn raw(path: &[(&str, &str)], query: &[(&str, &str)], body: Value) -> RawInput {
        let pairs =
            |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RawInput { path: pairs(path), query: pairs(query), body: Some(body), idempotency_key: None }
    }

    #[test]
    fn path_query_and_body_merge_into_one_typed_input() {
        let shape = InputShape::of::<Input>();
        let id = uuid::Uuid::now_v7();
        let merged = shape
            .merge(raw(&[("agent_id", &id.to_string())], &[("limit", "20")], json!({"name": "a"})))
            .unwrap();
        let input: Input = shape.decode(merged).unwrap();
        assert_eq!(input, Input { agent_id: id, body: Body { name: "a".into(), limit: Some(20) } });
    }

    #[test]
    fn an_unknown_field_is_named_with_the_fields_expected() {
        let shape = InputShape::of::<Input>();
        let error = shape
            .decode::<Input>(json!({"agent_id": uuid::Uuid::nil(), "name": "a", "nmae": 1}))
            .unwrap_err();
        assert!(error.message.contains("`nmae`"), "{}", error.message);
        assert!(error.message.contains("agent_id, limit, name"), "{}", error.message);
    }

    #[test]
    fn a_body_that_contradicts_the_path_is_refused() {
        let shape = InputShape::of::<Input>();
        let a = uuid::Uuid::now_v7().to_string();
        let b = uuid::Uuid::now_v7().to_string();
        let error = shape.merge(raw(&[("agent_id", &a)], &[], json!({"agent_id": b}))).unwrap_err();
        assert!(error.message.contains("agent_id"), "{}", error.message);
    }

    #[test]
    fn an_idempotency_key_header_that_contradicts_the_body_is_refused() {
        #[derive(Debug, Deserialize, JsonSchema)]
        struct Keyed {
            #[serde(default)]
            idempotency_key: Option<String>,
        }
        let shape = InputShape::of::<Keyed>();
        let keyed = |header: &str, body: Value| RawInput {
            idempotency_key: Some(header.into()),
            ..raw(&[], &[], body)
        };

        let error = shape.merge(keyed("key-7", json!({"idempotency_key": "key-6"}))).unwrap_err();
        assert!(error.message.starts_with("`idempotency_key`:"), "{}", error.message);
        let same = shape.merge(keyed("key-7", json!({"idempotency_key": "key-7"}))).unwrap();
        assert_eq!(same, json!({"idempotency_key": "key-7"}));
        assert_eq!(shape.merge(keyed("key-7", json!({}))).unwrap(), same);
        let input: Keyed = shape.decode(same).unwrap();
        assert_eq!(input.idempotency_key.as_deref(), Some("key-7"));
    }

    #[test]
    fn a_query_value_of_the_wrong_type_names_its_field() {
        let shape = InputShape::of::<Input>();
        let error = shape.merge(raw(&[], &[("limit", "many")], json!({}))).unwrap_err();
        assert_eq!(error.message, "`limit`: must be an integer, got `many`");
    }

    #[test]
    fn a_malformed_value_names_its_field_and_a_missing_one_says_so() {
        let shape = InputShape::of::<Input>();
        let bad_id = shape.decode::<Input>(json!({"agent_id": "x", "name": "a"})).unwrap_err();
        assert!(bad_id.message.starts_with("`agent_id`:"), "{}", bad_id.message);
        let missing = shape.decode::<Input>(json!({"agent_id": uuid::Uuid::nil()})).unwrap_err();
        assert!(missing.message.contains("missing field `name`"), "{}", missing.message);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        let shape = InputShape::of::<Input>();
        assert!(shape.merge(raw(&[], &[], json!([1, 2]))).is_err());
        assert!(shape.merge(raw(&[], &[], Value::Null)).is_err());
    }

    #[test]
    fn a_nul_character_anywhere_in_a_field_is_refused_naming_the_field() {
        let shape = InputShape::of::<Input>();
        let input = json!({"agent_id": uuid::Uuid::nil(), "name": "a\u{0}b"});
        let error = shape.decode::<Input>(input).unwrap_err();
        assert_eq!(error.details["field"], "name");
    }

    #[test]
    fn a_whole_number_written_with_a_fraction_is_an_integer() {
        let shape = InputShape::of::<Input>();
        let id = uuid::Uuid::nil();
        let input: Input =
            shape.decode(json!({"agent_id": id, "name": "a", "limit": 20.0})).unwrap();
        assert_eq!(input.body.limit, Some(20));
        let error = shape.decode::<Input>(json!({"agent_id": id, "name": "a", "limit": 2.5}));
        assert!(error.is_err());
    }
}
