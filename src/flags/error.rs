//! What can go wrong in this concern, mapped onto the shared [`ErrorCode`] list.

use crate::kernel::graphql::error::ErrorCode;

/// Failures of the versions, maintenance and bootstrap concern.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// A version that does not parse (`versions set`, settings).
    #[error("{0:?} is not a version (expected 1.2, 1.2.3 or 1.2.3 (456))")]
    InvalidVersion(String),
    /// The recommended version is older than the minimum.
    #[error("the recommended version {recommended} is older than the minimum {minimum}")]
    RecommendedBelowMinimum {
        /// The minimum.
        minimum: String,
        /// The recommended version.
        recommended: String,
    },
    /// A store URL that is not an absolute URL.
    #[error("{0:?} is not an absolute URL")]
    InvalidUrl(String),
    /// A platform other than ios, android, web.
    #[error("unknown platform {0:?} (ios, android or web)")]
    UnknownPlatform(String),
    /// An input that is too long or otherwise out of range.
    #[error("{0}")]
    OutOfRange(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl FlagsError {
    /// The public code, were this error sent to a client.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Database(_) => ErrorCode::Internal,
            _ => ErrorCode::BadUserInput,
        }
    }
}
