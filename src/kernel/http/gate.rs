//! The version and maintenance gate on every transport: which operations the
//! [`ClientGate`] hook may refuse, and how a refusal is written on each of them.
//!
//! **The bootstrap is exempt**: a query whose selected operation selects only the gate's
//! exempt root fields (`bootstrap`, under any alias, and `__typename`) always runs, so an app
//! that is refused everything else can still learn why and show its upgrade or maintenance
//! screen. Fragments at the root, directives on a root field, mutations and subscriptions are
//! never exempt, nor a document with several operations and no operation name.
//!
//! A refusal is `426 Upgrade Required` + `UPGRADE_REQUIRED` (`extensions.minVersion`,
//! `extensions.storeUrl`) or `503 Service Unavailable` + `MAINTENANCE` (`Retry-After`,
//! `extensions.retryAfterSeconds`, `extensions.until`) over HTTP and SSE, the WebSocket close
//! codes 4426 and 1013, and the same JSON error as a result of an operation sent over an
//! open socket.

use async_graphql::{
    ServerError,
    parser::types::{ExecutableDocument, OperationType, Selection},
};
use axum::{
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::kernel::{
    graphql::{error::ErrorCode, ordering::selected_operation},
    hooks::{ClientGate, Refusal},
    request::ClientInfo,
};

/// The response header naming the minimum version of the caller's platform.
pub const X_MIN_APP_VERSION: HeaderName = HeaderName::from_static("x-min-app-version");

/// WebSocket close codes of a refusal (documented in docs/realtime.md).
pub mod close {
    /// The app version is below the minimum: upgrade, do not reconnect.
    pub const UPGRADE_REQUIRED: u16 = 4426;
    /// Maintenance ("Try Again Later", RFC 6455 registry): reconnect after the window.
    pub const MAINTENANCE: u16 = 1013;
}

/// Whether the selected operation of `document` selects only `exempt` root fields.
pub fn is_exempt(document: &ExecutableDocument, operation_name: Option<&str>, exempt: &[&str]) -> bool {
    if operation_name.is_none() && document.operations.iter().count() != 1 {
        return false;
    }
    let Some(operation) = selected_operation(document, operation_name) else {
        return false;
    };
    let operation = &operation.node;
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return false;
    }
    let items = &operation.selection_set.node.items;
    let mut named = false;
    for item in items {
        let Selection::Field(field) = &item.node else {
            return false;
        };
        let name = field.node.name.node.as_str();
        if !field.node.directives.is_empty() {
            return false;
        }
        if exempt.contains(&name) {
            named = true;
        } else if name != "__typename" {
            return false;
        }
    }
    named
}

/// The gate's verdict on one operation of `client`.
pub fn admit(
    gate: &dyn ClientGate,
    client: &ClientInfo,
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Result<(), Refusal> {
    match gate.check(client) {
        Ok(()) => Ok(()),
        Err(_) if is_exempt(document, operation_name, gate.exempt_root_fields()) => Ok(()),
        Err(refusal) => Err(refusal),
    }
}

fn extensions(refusal: &Refusal) -> async_graphql::ErrorExtensionValues {
    let mut ext = async_graphql::ErrorExtensionValues::default();
    match refusal {
        Refusal::UpgradeRequired { min_version, store_url } => {
            ext.set("code", ErrorCode::UpgradeRequired.as_str());
            ext.set("minVersion", min_version.as_str());
            ext.set("storeUrl", store_url.clone().map_or(async_graphql::Value::Null, async_graphql::Value::from));
        }
        Refusal::Maintenance { until, retry_after_seconds, .. } => {
            ext.set("code", ErrorCode::Maintenance.as_str());
            ext.set("retryAfterSeconds", *retry_after_seconds);
            ext.set("until", until.clone().map_or(async_graphql::Value::Null, async_graphql::Value::from));
        }
    }
    ext
}

fn message(refusal: &Refusal) -> String {
    match refusal {
        Refusal::UpgradeRequired { min_version, .. } => {
            format!("this app version is no longer supported: update to {min_version} or later")
        }
        Refusal::Maintenance { message, .. } => message.clone(),
    }
}

/// The refusal as a GraphQL error (an operation sent over an open WebSocket).
pub fn refusal_error(refusal: &Refusal) -> ServerError {
    let mut error = ServerError::new(message(refusal), None);
    error.extensions = Some(extensions(refusal));
    error
}

/// The refusal as an HTTP response (GraphQL over HTTP, SSE).
pub fn refusal_response(refusal: &Refusal) -> Response {
    let error = refusal_error(refusal);
    let body = serde_json::json!({ "errors": [error] });
    let status = match refusal {
        Refusal::UpgradeRequired { .. } => StatusCode::UPGRADE_REQUIRED,
        Refusal::Maintenance { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match refusal {
        Refusal::UpgradeRequired { min_version, .. } => {
            if let Ok(value) = HeaderValue::from_str(min_version) {
                headers.insert(X_MIN_APP_VERSION, value);
            }
        }
        Refusal::Maintenance { retry_after_seconds, .. } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
    }
    response
}

/// The WebSocket close frame of a refusal: code and reason (at most 123 bytes).
pub fn close_frame(refusal: &Refusal) -> (u16, &'static str) {
    match refusal {
        Refusal::UpgradeRequired { .. } => (close::UPGRADE_REQUIRED, "Upgrade required: update the app"),
        Refusal::Maintenance { .. } => (close::MAINTENANCE, "Maintenance: try again later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exempt(query: &str, name: Option<&str>) -> bool {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        is_exempt(&document, name, &["bootstrap"])
    }

    #[test]
    fn only_a_bootstrap_alone_is_exempt() {
        assert!(exempt("{ bootstrap { serverTime } }", None));
        assert!(exempt("query Start { __typename b: bootstrap { serverTime } }", None));
        assert!(exempt("query A { feed { __typename } } query B { bootstrap { serverTime } }", Some("B")));
        assert!(!exempt("query A { feed { __typename } } query B { bootstrap { serverTime } }", Some("A")));
        assert!(!exempt("query A { bootstrap { serverTime } } query B { bootstrap { serverTime } }", None));
        assert!(!exempt("{ bootstrap { serverTime } viewer { id } }", None));
        assert!(!exempt("{ __typename }", None));
        assert!(!exempt("{ ... on Query { bootstrap { serverTime } } }", None));
        assert!(!exempt("query { ...F } fragment F on Query { bootstrap { serverTime } }", None));
        assert!(!exempt("mutation { bootstrap }", None));
        assert!(!exempt("subscription { bootstrap }", None));
        assert!(!exempt("{ bootstrap @include(if: true) { serverTime } }", None));
        assert!(!exempt("{ bootstrap { serverTime } }", Some("Missing")));
    }
}
