//! Paging: an opaque cursor and a checked page size.
//!
//! A cursor names the last row of a page; the next page starts after it. Rows are ordered by
//! their UUIDv7 ids, so a cursor stays valid while rows are added. Cursors are base64url text
//! so that clients treat them as opaque.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::ApiError;

/// The default number of rows per page.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page a caller may ask for.
pub const MAX_LIMIT: u32 = 200;

/// Where a page starts: after the row with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Uuid);

impl Cursor {
    /// The cursor that continues after the row `id`.
    pub fn after(id: Uuid) -> Self {
        Self(id)
    }

    /// The id of the last row already seen.
    pub fn id(self) -> Uuid {
        self.0
    }

    /// Decodes a cursor that this API returned; anything else is a 400 naming `cursor`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok();
        bytes
            .and_then(|b| Uuid::from_slice(&b).ok())
            .map(Self)
            .ok_or_else(|| ApiError::invalid_field("cursor", "is not a cursor this API returned"))
    }

    /// The opaque text form handed to clients.
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }
}

/// A checked page size: 1 to [`MAX_LIMIT`], never clamped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    /// The page size asked for, or the default; out of range is a 400 naming `limit`.
    pub fn parse(limit: Option<u32>) -> Result<Self, ApiError> {
        match limit.unwrap_or(DEFAULT_LIMIT) {
            n @ 1..=MAX_LIMIT => Ok(Self(n)),
            n => Err(ApiError::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, got {n}"),
            )),
        }
    }

    /// How many rows a page holds.
    pub fn rows(self) -> usize {
        self.0 as usize
    }

    /// How many rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(self) -> i64 {
        i64::from(self.0) + 1
    }
}

/// Parses the optional cursor and limit of a list request.
pub fn page_of(
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<(Option<Uuid>, Limit), ApiError> {
    let after = cursor.map(Cursor::parse).transpose()?.map(Cursor::id);
    Ok((after, Limit::parse(limit)?))
}

/// Cuts the extra row fetched by [`Limit::fetch`] and returns the cursor of the next page.
pub fn finish<T>(rows: &mut Vec<T>, limit: Limit, id: impl Fn(&T) -> Uuid) -> Option<String> {
    if rows.len() <= limit.0 as usize {
        return None;
    }
    rows.truncate(limit.0 as usize);
    rows.last().map(|row| Cursor::after(id(row)).encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_through_its_text_form() {
        let cursor = Cursor::after(Uuid::now_v7());
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn text_that_is_not_a_cursor_is_refused_naming_the_field() {
        for text in ["", "not a cursor", "AAAA", "%%%"] {
            let error = Cursor::parse(text).unwrap_err();
            assert_eq!(error.code, "invalid_request");
            assert!(error.message.contains("cursor"), "{}", error.message);
        }
    }

    #[test]
    fn a_limit_outside_its_range_is_refused_not_clamped() {
        assert!(Limit::parse(Some(0)).is_err());
        assert!(Limit::parse(Some(MAX_LIMIT + 1)).is_err());
        assert_eq!(Limit::parse(None).unwrap(), Limit(DEFAULT_LIMIT));
        assert_eq!(Limit::parse(Some(MAX_LIMIT)).unwrap(), Limit(MAX_LIMIT));
    }

    #[test]
    fn finishing_a_page_cuts_the_extra_row_and_points_after_the_last_kept_one() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let limit = Limit::parse(Some(2)).unwrap();
        let mut rows = ids.clone();
        let next = finish(&mut rows, limit, |id| *id).unwrap();
        assert_eq!(rows, ids[..2]);
        assert_eq!(Cursor::parse(&next).unwrap().id(), ids[1]);

        let mut last_page = ids[..2].to_vec();
        assert_eq!(finish(&mut last_page, limit, |id| *id), None);
    }
}
