//! The media concern's errors, their public codes and their HTTP form on the upload and media
//! routes (always a JSON body with `extensions.code`; tus statuses where tus defines one:
//! 409 offset mismatch, 412 unsupported `Tus-Resumable`, 460 checksum mismatch, 410 expired).

use async_graphql::ErrorExtensions;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::kernel::{
    error::DomainError,
    graphql::error::{ErrorCode, api_error, domain_error},
};

/// The tus protocol version this server speaks.
pub const TUS_VERSION: &str = "1.0.0";

/// Why a media operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// An argument, a header or a body breaks a rule.
    #[error("{0}")]
    InvalidInput(String),
    /// No such upload or media object (or it belongs to someone else).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No or invalid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// The file is larger than its kind allows or than the user's remaining quota.
    #[error("{message}")]
    QuotaExceeded {
        /// What was exceeded, for the user.
        message: String,
        /// The largest size that would be accepted now.
        max_size_bytes: u64,
        /// Bytes left of the user's quota.
        remaining_quota: u64,
    },
    /// A tus `PATCH` at another offset than the upload's (409; the body says the real one).
    #[error("Upload-Offset is {sent} but the upload is at {current}")]
    OffsetMismatch {
        /// The offset the request claimed.
        sent: i64,
        /// The upload's committed offset.
        current: i64,
    },
    /// The chunk's `Upload-Checksum` does not match its bytes (460); the chunk was discarded.
    #[error("Upload-Checksum does not match the chunk; it was discarded")]
    ChecksumMismatch,
    /// The upload expired before its last byte arrived (410).
    #[error("the upload expired")]
    Expired,
    /// The client speaks another tus version (412).
    #[error("Tus-Resumable must be {TUS_VERSION}")]
    TusVersion,
    /// A `PATCH` body that is not `application/offset+octet-stream` (415).
    #[error("Content-Type must be application/offset+octet-stream")]
    ContentType,
    /// The upload is complete: it takes no more bytes (409).
    #[error("the upload is complete")]
    Complete,
    /// The storage failed (logged; `INTERNAL`).
    #[error("storage: {0}")]
    Storage(#[from] std::io::Error),
    /// A use case below failed (database, serialisation).
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<sea_orm::DbErr> for MediaError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Domain(DomainError::Database(err))
    }
}

impl MediaError {
    /// Shorthand for [`MediaError::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// The public code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) | Self::ChecksumMismatch => ErrorCode::BadUserInput,
            Self::TusVersion => ErrorCode::BadRequest,
            Self::NotFound(_) | Self::Expired => ErrorCode::NotFound,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            Self::OffsetMismatch { .. } | Self::Complete => ErrorCode::Conflict,
            Self::ContentType => ErrorCode::UnsupportedMediaType,
            Self::Storage(_) => ErrorCode::Internal,
            Self::Domain(err) => match err {
                DomainError::NotFound(_) => ErrorCode::NotFound,
                DomainError::InvalidInput(_) => ErrorCode::BadUserInput,
                DomainError::Forbidden(_) => ErrorCode::Forbidden,
                DomainError::Conflict(_) => ErrorCode::Conflict,
                DomainError::Unauthenticated => ErrorCode::Unauthenticated,
                DomainError::Database(_) | DomainError::Serialization(_) => ErrorCode::Internal,
            },
        }
    }

    /// The HTTP status on the upload and media routes.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidInput(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::QuotaExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::OffsetMismatch { .. } | Self::Complete => StatusCode::CONFLICT,
            Self::ChecksumMismatch => StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            Self::Expired => StatusCode::GONE,
            Self::TusVersion => StatusCode::PRECONDITION_FAILED,
            Self::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Domain(err) => match err {
                DomainError::NotFound(_) => StatusCode::NOT_FOUND,
                DomainError::InvalidInput(_) => StatusCode::BAD_REQUEST,
                DomainError::Forbidden(_) => StatusCode::FORBIDDEN,
                DomainError::Conflict(_) => StatusCode::CONFLICT,
                DomainError::Unauthenticated => StatusCode::UNAUTHORIZED,
                DomainError::Database(_) | DomainError::Serialization(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The message a client sees (internal causes are logged here and replaced).
    fn public_message(&self) -> String {
        match self {
            Self::Storage(_) | Self::Domain(DomainError::Database(_) | DomainError::Serialization(_)) => {
                tracing::error!(error = %self, "internal error in media");
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The `extensions` beyond `code`.
    fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut ext = serde_json::Map::new();
        match self {
            Self::QuotaExceeded { max_size_bytes, remaining_quota, .. } => {
                ext.insert("maxSizeBytes".into(), json!(max_size_bytes));
                ext.insert("remainingQuota".into(), json!(remaining_quota));
            }
            Self::OffsetMismatch { current, .. } => {
                ext.insert("uploadOffset".into(), json!(current));
            }
            Self::ChecksumMismatch => {
                ext.insert("reason".into(), json!("CHECKSUM_MISMATCH"));
            }
            Self::Expired => {
                ext.insert("reason".into(), json!("EXPIRED"));
            }
            _ => {}
        }
        ext
    }

    /// The GraphQL error (internal causes logged, not shown).
    pub fn into_graphql(self) -> async_graphql::Error {
        if let Self::Domain(err) = self {
            return domain_error(err);
        }
        let code = self.code();
        let extra = self.extensions();
        let error = api_error(code, self.public_message());
        if extra.is_empty() {
            return error;
        }
        error.extend_with(move |_, ext| {
            for (key, value) in &extra {
                if let Ok(value) = async_graphql::Value::from_json(value.clone()) {
                    ext.set(key.as_str(), value);
                }
            }
        })
    }
}

impl IntoResponse for MediaError {
    /// `{"errors":[{"message", "extensions":{"code", …}}]}` with the tus headers every tus
    /// response carries.
    fn into_response(self) -> Response {
        let status = self.status();
        let mut extensions = self.extensions();
        extensions.insert("code".into(), json!(self.code().as_str()));
        let body = json!({ "errors": [{ "message": self.public_message(), "extensions": extensions }] });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
        if matches!(self, Self::TusVersion) {
            headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
        }
        if let Self::OffsetMismatch { current, .. } = self {
            headers.insert("upload-offset", HeaderValue::from(current));
        }
        response
    }
}

/// `Result<T, MediaError>` → `async_graphql::Result<T>`.
pub trait MediaResultExt<T> {
    /// Converts the error with [`MediaError::into_graphql`].
    fn api(self) -> async_graphql::Result<T>;
}

impl<T> MediaResultExt<T> for Result<T, MediaError> {
    fn api(self) -> async_graphql::Result<T> {
        self.map_err(MediaError::into_graphql)
    }
}
