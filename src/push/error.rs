//! The push concern's errors and their public codes.

use crate::kernel::{
    error::DomainError,
    graphql::error::{ErrorCode, api_error, domain_error},
};

/// Why a push operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A token, a title, data or an option breaks a rule.
    #[error("{0}")]
    InvalidInput(String),
    /// The notification is larger than the provider accepts (never truncated).
    #[error("{provider} payload is {size} bytes, {over} over its {limit}-byte limit", over = size - limit)]
    PayloadTooLarge {
        /// `APNs` or `FCM`.
        provider: &'static str,
        /// The provider's limit in bytes.
        limit: usize,
        /// The payload's size in bytes.
        size: usize,
    },
    /// The request needs a device session (a token minted for a device).
    #[error("this token has no device session")]
    NoDevice,
    /// No user with that handle (command line).
    #[error("no user {0:?}")]
    UnknownUser(String),
    /// A credential file could not be read or is malformed (at start).
    #[error("{what}: {reason}")]
    Credentials {
        /// The setting.
        what: &'static str,
        /// What is wrong (never the secret itself).
        reason: String,
    },
    /// A use case below failed (database, idempotency).
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<sea_orm::DbErr> for PushError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Domain(DomainError::Database(err))
    }
}

impl PushError {
    /// The public code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) | Self::NoDevice | Self::UnknownUser(_) => ErrorCode::BadUserInput,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::Credentials { .. } => ErrorCode::Internal,
            Self::Domain(_) => ErrorCode::Internal,
        }
    }

    /// The GraphQL error (internal causes logged, not shown).
    pub fn into_graphql(self) -> async_graphql::Error {
        match self {
            Self::Domain(err) => domain_error(err),
            Self::Credentials { .. } => {
                tracing::error!(error = %self, "push credentials");
                api_error(ErrorCode::Internal, "internal error")
            }
            Self::PayloadTooLarge { provider, limit, size } => {
                use async_graphql::ErrorExtensions;
                async_graphql::Error::new(self.to_string()).extend_with(move |_, ext| {
                    ext.set("code", ErrorCode::PayloadTooLarge.as_str());
                    ext.set("provider", provider);
                    ext.set("maxSizeBytes", limit as u64);
                    ext.set("sizeBytes", size as u64);
                })
            }
            other => api_error(other.code(), other.to_string()),
        }
    }
}

/// `Result<T, PushError>` → `async_graphql::Result<T>`.
pub trait PushResultExt<T> {
    /// Converts the error with [`PushError::into_graphql`].
    fn api(self) -> async_graphql::Result<T>;
}

impl<T> PushResultExt<T> for Result<T, PushError> {
    fn api(self) -> async_graphql::Result<T> {
        self.map_err(PushError::into_graphql)
    }
}
