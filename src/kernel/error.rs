//! The domain's error enum. Each variant maps to one public error code at the GraphQL edge;
//! database and serialisation causes are logged there and never shown to clients.

use sea_orm::DbErr;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The thing does not exist (or is deleted, or not visible to the viewer).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The input breaks a rule; the message says which, for the user.
    #[error("{0}")]
    InvalidInput(String),
    /// The viewer may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request conflicts with earlier state (e.g. an idempotency key reused with another
    /// input).
    #[error("{0}")]
    Conflict(&'static str),
    /// A signed-in viewer is required.
    #[error("authentication required")]
    Unauthenticated,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// A stored value could not be (de)serialised.
    #[error("stored value error: {0}")]
    Serialization(#[from] serde_json::Error),
}

impl DomainError {
    /// Shorthand for [`DomainError::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}
