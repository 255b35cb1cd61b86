//! What a store method can fail with: the database is unreachable, a unique row exists, or
//! something else went wrong. Absent rows are not errors: lookups return `Option`.

/// A failed database call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database does not answer (connection refused or lost, pool exhausted); retryable.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A row with the same unique key exists.
    #[error("duplicate row: {0}")]
    Duplicate(#[source] sqlx::Error),
    /// Any other failure: a bug or a broken database.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(error),
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Duplicate(error),
            _ => Self::Other(error),
        }
    }
}
