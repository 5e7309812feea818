//! The public error contract: a closed list of codes that become `extensions.code`.
//!
//! Resolvers turn [`DomainError`]s into GraphQL errors with [`domain_error`]; internal causes
//! (database, serialisation) are logged with the request's span and replaced by a generic
//! `INTERNAL` message. The same codes are used by the HTTP layer for request-level errors.

use async_graphql::{Error, ErrorExtensions};

use crate::kernel::error::DomainError;

/// Every error code a client can receive (see docs/api.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// No or invalid access token where one is required.
    Unauthenticated,
    /// Signed in but not allowed.
    Forbidden,
    /// The thing does not exist.
    NotFound,
    /// An argument breaks a rule (including invalid cursors and ids, `first` out of range).
    BadUserInput,
    /// An idempotency key reused for a different request, or still in flight.
    Conflict,
    /// Unexpected server failure; details are in the server log under the request id.
    Internal,
    /// The request body is not valid JSON or not a GraphQL request.
    BadRequest,
    /// The GraphQL document does not parse.
    GraphqlParseFailed,
    /// The GraphQL document does not validate against the schema.
    GraphqlValidationFailed,
    /// The operation is nested deeper than allowed.
    QueryTooDeep,
    /// The operation is more complex than allowed.
    QueryTooComplex,
    /// The batch holds more operations than allowed.
    BatchTooLarge,
    /// The body or query is larger than allowed.
    PayloadTooLarge,
    /// `Content-Type` is not `application/json`.
    UnsupportedMediaType,
    /// `Accept` allows no media type the server produces.
    NotAcceptable,
    /// Wrong HTTP method (for example a mutation over GET).
    MethodNotAllowed,
    /// No such route.
    RouteNotFound,
    /// The persisted document id is unknown; send the query text with it.
    PersistedQueryNotFound,
    /// The server only runs operations from the app's manifest.
    PersistedQueryRequired,
    /// Too many requests: retry after `extensions.retryAfterSeconds`.
    RateLimited,
    /// An upstream service behind this field is down, refused the request or is not
    /// configured (`extensions.reason`, `extensions.upstream`); the rest of the data is valid.
    UpstreamUnavailable,
    /// An upstream service did not answer within the operation's deadline.
    UpstreamTimeout,
    /// The event-log position is older than retention: refetch, then continue from
    /// `extensions.latestSeq`.
    ResyncRequired,
    /// This app version is no longer served: show the upgrade screen
    /// (`extensions.minVersion`, `extensions.storeUrl`); HTTP 426.
    UpgradeRequired,
    /// The service is in maintenance: show the maintenance screen, retry after
    /// `extensions.retryAfterSeconds`; HTTP 503.
    Maintenance,
    /// A file is larger than its kind allows or than the user's remaining storage quota
    /// (`extensions.maxSizeBytes`, `extensions.remainingQuota`); HTTP 413 on upload routes.
    QuotaExceeded,
}

impl ErrorCode {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::Internal => "INTERNAL",
            Self::BadRequest => "BAD_REQUEST",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::QueryTooDeep => "QUERY_TOO_DEEP",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::BatchTooLarge => "BATCH_TOO_LARGE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::NotAcceptable => "NOT_ACCEPTABLE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RouteNotFound => "ROUTE_NOT_FOUND",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryRequired => "PERSISTED_QUERY_REQUIRED",
            Self::RateLimited => "RATE_LIMITED",
            Self::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Self::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Self::ResyncRequired => "RESYNC_REQUIRED",
            Self::UpgradeRequired => "UPGRADE_REQUIRED",
            Self::Maintenance => "MAINTENANCE",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
        }
    }
}

/// A GraphQL error with a code.
pub fn api_error(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, ext| ext.set("code", code.as_str()))
}

/// `RATE_LIMITED` with `retryAfterSeconds`.
pub fn rate_limited(retry: crate::kernel::infra::rate_limit::RetryAfter) -> Error {
    let seconds = retry.seconds();
    Error::new(format!("too many requests; retry in {seconds} s")).extend_with(move |_, ext| {
        ext.set("code", ErrorCode::RateLimited.as_str());
        ext.set("retryAfterSeconds", seconds);
    })
}

/// `RESYNC_REQUIRED` with `latestSeq`.
pub fn resync_required(latest: i64) -> Error {
    Error::new("afterSeq is older than the event log keeps: refetch, then continue from extensions.latestSeq")
        .extend_with(move |_, ext| {
            ext.set("code", ErrorCode::ResyncRequired.as_str());
            ext.set("latestSeq", latest);
        })
}

/// Maps a domain error to its public code; internal causes are logged, not shown.
pub fn domain_error(err: DomainError) -> Error {
    match err {
        DomainError::NotFound(what) => api_error(ErrorCode::NotFound, format!("{what} not found")),
        DomainError::InvalidInput(message) => api_error(ErrorCode::BadUserInput, message),
        DomainError::Forbidden(message) => api_error(ErrorCode::Forbidden, message),
        DomainError::Conflict(message) => api_error(ErrorCode::Conflict, message),
        DomainError::Unauthenticated => {
            api_error(ErrorCode::Unauthenticated, "sign in to do this (send Authorization: Bearer <token>)")
        }
        DomainError::Database(_) | DomainError::Serialization(_) => {
            tracing::error!(error = %err, "internal error in a resolver");
            api_error(ErrorCode::Internal, "internal error")
        }
    }
}

/// `Result<T, DomainError>` → `async_graphql::Result<T>` with the right code.
pub trait DomainResultExt<T> {
    /// Converts the error with [`domain_error`].
    fn api(self) -> async_graphql::Result<T>;
}

impl<T> DomainResultExt<T> for Result<T, DomainError> {
    fn api(self) -> async_graphql::Result<T> {
        self.map_err(domain_error)
    }
}

/// A DataLoader failure (already logged by the loader) as an `INTERNAL` error.
pub fn loader_error(err: std::sync::Arc<sea_orm::DbErr>) -> Error {
    tracing::error!(error = %err, "data loader failed");
    api_error(ErrorCode::Internal, "internal error")
}

/// A database failure outside a loader as an `INTERNAL` error (logged).
pub fn db_error(err: sea_orm::DbErr) -> Error {
    domain_error(DomainError::Database(err))
}
