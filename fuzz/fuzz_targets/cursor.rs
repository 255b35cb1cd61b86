//! Cursor decoding: the opaque page cursor and the event-log position.
//!
//! A page cursor that decodes is exactly the text this API would hand out for that row, so no
//! two texts name the same page. An event position that decodes is not negative, and is exactly
//! the text it displays as. Both forms made by the API always decode to what they were made from.

#![no_main]

use kapable_comms::follow;
use kapable_comms::pagination::{self, Cursor};
use kapable_comms::store::Position;
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

// The bytes are read as the text of a cursor and, when there are enough, as a row id and an
// event position to make cursors from.
fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_page_cursor(text);
        check_event_cursor(text);
    }
    if let Some(bytes) = data.first_chunk::<16>() {
        let cursor = Cursor::after(Uuid::from_bytes(*bytes));
        assert_eq!(Cursor::parse(&cursor.encode()).expect("an encoded cursor decodes"), cursor);

        // Positions are never negative: ids and transaction ids count up from 1.
        let (xid, id) = bytes.split_at(8);
        let half = |b: &[u8]| i64::from_le_bytes(b.try_into().expect("8 bytes")) & i64::MAX;
        let position = Position { xid: half(xid), id: half(id) };
        let text = position.to_string();
        assert_eq!(follow::parse_cursor("after", &text).expect("a position decodes"), position);
    }
});

fn check_page_cursor(text: &str) {
    match Cursor::parse(text) {
        Ok(cursor) => assert_eq!(cursor.encode(), text, "only the canonical text decodes"),
        Err(error) => assert!(error.message.contains("cursor"), "{}", error.message),
    }
    if let Ok((after, _)) = pagination::page_of(Some(text), None) {
        assert_eq!(after.map(Cursor::after).map(Cursor::encode).as_deref(), Some(text));
    }
}

fn check_event_cursor(text: &str) {
    let Ok(position) = follow::parse_cursor("after", text) else {
        return;
    };
    assert!(position.xid >= 0 && position.id >= 0, "{text:?} gave {position:?}");
    assert_eq!(position.to_string(), text, "only the canonical text decodes");
}
