//! What can go wrong in sync, mapped onto the shared [`ErrorCode`] list. A push row that
//! fails answers `REJECTED` with [`SyncError::code`] and its message; the other operations
//! turn the error into a GraphQL error with [`SyncError::into_api`].

use crate::kernel::{
    error::DomainError,
    graphql::error::{ErrorCode, api_error, domain_error, resync_required},
};

/// Failures of the sync concern.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A field breaks a rule (not a UUID, too long, too many tags, unknown clock format).
    #[error("{0}")]
    Invalid(String),
    /// A value is larger than the server keeps.
    #[error("{0}")]
    TooLarge(String),
    /// The viewer may not read or change this note.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such note (or conflict) visible to the viewer.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The row's hybrid-logical-clock stamp is further ahead of the server's clock than
    /// `sync.max_clock_ahead_ms`.
    #[error("the row's clock is {ahead_ms} ms ahead of the server (at most {max_ms} ms): fix the device clock")]
    ClockAhead {
        /// How far ahead.
        ahead_ms: u64,
        /// The allowed maximum.
        max_ms: u64,
    },
    /// The checkpoint is older than tombstone retention (or from another database): drop
    /// the local copy and pull from a null checkpoint.
    #[error("the checkpoint is older than the server keeps tombstones: resync from a null checkpoint")]
    Resync {
        /// The viewer's newest change position.
        latest: i64,
    },
    /// Something below failed (database, serialisation).
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<sea_orm::DbErr> for SyncError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Domain(DomainError::Database(err))
    }
}

impl From<serde_json::Error> for SyncError {
    fn from(err: serde_json::Error) -> Self {
        Self::Domain(DomainError::Serialization(err))
    }
}

impl SyncError {
    /// The public code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) | Self::ClockAhead { .. } => ErrorCode::BadUserInput,
            Self::TooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Resync { .. } => ErrorCode::ResyncRequired,
            Self::Domain(DomainError::NotFound(_)) => ErrorCode::NotFound,
            Self::Domain(DomainError::InvalidInput(_)) => ErrorCode::BadUserInput,
            Self::Domain(DomainError::Forbidden(_)) => ErrorCode::Forbidden,
            Self::Domain(DomainError::Conflict(_)) => ErrorCode::Conflict,
            Self::Domain(DomainError::Unauthenticated) => ErrorCode::Unauthenticated,
            Self::Domain(DomainError::Database(_) | DomainError::Serialization(_)) => ErrorCode::Internal,
        }
    }

    /// The message a client may see (internal causes are logged and replaced).
    pub fn public_message(&self) -> String {
        match self {
            Self::Domain(DomainError::Database(_) | DomainError::Serialization(_)) => {
                tracing::error!(error = %self, "internal error in sync");
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The GraphQL error.
    pub fn into_api(self) -> async_graphql::Error {
        match self {
            Self::Domain(err) => domain_error(err),
            Self::Resync { latest } => {
                let mut err = resync_required(latest);
                err.message = RESYNC_MESSAGE.to_owned();
                err
            }
            other => api_error(other.code(), other.public_message()),
        }
    }
}

/// The message of `RESYNC_REQUIRED` for pulls.
const RESYNC_MESSAGE: &str = "the checkpoint is older than the server keeps tombstones (or unknown): drop the local notes and pull from a null checkpoint";

/// `Result<T, SyncError>` → `async_graphql::Result<T>`.
pub trait SyncResultExt<T> {
    /// Converts the error with [`SyncError::into_api`].
    fn api(self) -> async_graphql::Result<T>;
}

impl<T> SyncResultExt<T> for Result<T, SyncError> {
    fn api(self) -> async_graphql::Result<T> {
        self.map_err(SyncError::into_api)
    }
}
