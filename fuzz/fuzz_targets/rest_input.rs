//! The REST input merge: path, query, body and `Idempotency-Key` joined into one input, for
//! each operation of the real registry.
//!
//! What the merge promises: it never panics; a body that is not an object is refused; when it
//! succeeds, every path parameter and every query value is in the input as that value alone
//! would have been coerced, and every body field is there with the value the body gave. A field
//! given twice with two values is refused, never decided silently, so a body can not replace a
//! path parameter. Decoding then refuses exactly the inputs that have an unknown field or a NUL
//! character in any string.
//!
//! An input is text, one part a line, the body last (it may span lines):
//!
//! ```text
//! operation name
//! path parameters, in order, as a query string (`room_id=...`)
//! the query string
//! the Idempotency-Key header, or nothing
//! the body, JSON, or nothing
//! ```

#![no_main]

use kapable_comms::ops;
use kapable_comms::registry::{InputShape, Operation, RawInput};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Some((op, raw)) = request(data) else {
        return;
    };
    let (path, query) = (raw.path.clone(), raw.query.clone());
    let (body, key) = (raw.body.clone(), raw.idempotency_key.clone());

    let merged = match op.shape.merge(raw) {
        Ok(merged) => merged,
        Err(error) => {
            assert_eq!(error.status, 400, "{}: {}", op.name, error.message);
            return;
        }
    };
    let merged = merged.as_object().expect("the merged input is an object");

    for (name, text) in path.iter().chain(&query) {
        let alone = alone(&op.shape, name, text).expect("a value merged with others merges alone");
        assert_eq!(merged.get(name), Some(&alone), "{}: `{name}`", op.name);
    }
    let body = match body {
        Some(Value::Object(body)) => body,
        None | Some(Value::Null) => Map::new(),
        Some(other) => panic!("{}: a body {other} was accepted", op.name),
    };
    for (name, value) in &body {
        assert_eq!(merged.get(name), Some(value), "{}: the body's `{name}`", op.name);
    }
    if let Some(key) = key.filter(|_| op.shape.has("idempotency_key")) {
        assert_eq!(merged.get("idempotency_key"), Some(&Value::String(key)));
    }

    let unknown = merged.keys().any(|name| !op.shape.has(name));
    let nul = merged.values().any(holds_nul);
    let decoded = op.shape.decode::<Value>(Value::Object(merged.clone()));
    assert_eq!(decoded.is_err(), unknown || nul, "{}: {merged:?}", op.name);
});

/// Whether any string or key in `value` holds U+0000.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(key, item)| key.contains('\0') || holds_nul(item)),
        _ => false,
    }
}

/// The operation and its raw input, or `None` for text not in the format above.
fn request(data: &[u8]) -> Option<(&'static Operation, RawInput)> {
    let text = std::str::from_utf8(data).ok()?;
    let mut parts = text.splitn(5, '\n');
    let (name, path, query) = (parts.next()?, parts.next()?, parts.next()?);
    let (key, body) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());

    let all = ops::all();
    let op = all.iter().find(|op| op.name == name).unwrap_or_else(|| {
        // Any other name still picks an operation, so that no input is wasted.
        &all[name.bytes().map(usize::from).sum::<usize>() % all.len()]
    });
    let path: Vec<(String, String)> = serde_urlencoded::from_str(path).ok()?;
    let path = op.path_params().zip(path).map(|(name, (_, value))| (name.to_owned(), value));
    let body = if body.trim().is_empty() { None } else { Some(serde_json::from_str(body).ok()?) };
    let raw = RawInput {
        path: path.collect(),
        query: serde_urlencoded::from_str(query).ok()?,
        body,
        idempotency_key: Some(key.to_owned()).filter(|key| !key.is_empty()),
    };
    Some((op, raw))
}

/// The value `name` takes when it is the only thing given.
fn alone(shape: &InputShape, name: &str, text: &str) -> Option<Value> {
    let raw = RawInput { path: vec![(name.to_owned(), text.to_owned())], ..RawInput::default() };
    shape.merge(raw).ok()?.get(name).cloned()
}
