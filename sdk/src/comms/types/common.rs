//! Types shared by many operations: paging and acknowledgements.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Paging of a list: how many rows, and where to continue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PageQuery {
    /// Rows per page, 1 to 200; default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 1, "maximum" = 200))]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; absent for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = super::patterns::CURSOR))]
    pub cursor: Option<String>,
}

/// The answer of an operation that removes or revokes something.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    /// Always true: the object is gone, or was already gone.
    pub deleted: bool,
}
