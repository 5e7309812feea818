//! Bearer-token authentication of a request: no header means anonymous; a header that is
//! not a valid, unexpired access token signed by us is refused with 401 `UNAUTHENTICATED`
//! (the client should refresh its token), never silently treated as anonymous.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

use crate::kernel::http::errors::error_response;
use crate::{
    app::App,
    auth::keys::SigningKeys,
    kernel::{graphql::error::ErrorCode, request::Viewer},
};

/// The viewer of a request, or the 401 response to send. A token of a signed-out (revoked)
/// device is refused like an invalid one.
pub async fn authenticate(headers: &HeaderMap, app: &App) -> Result<Viewer, Box<Response>> {
    let viewer = verify(headers, &app.keys)?;
    if let (Some(user_id), Some(device_id)) = (viewer.user_id, viewer.device_id) {
        // Boxed: the check's future (a cache and maybe a database read) is kilobytes, which
        // inline would enlarge every handler future that authenticates.
        match Box::pin(app.gate.allows(user_id, device_id)).await {
            Ok(true) => {}
            Ok(false) => return Err(Box::new(unauthorized("access token is invalid or expired"))),
            Err(err) => {
                tracing::error!(error = %err, "revocation check failed");
                return Err(Box::new(error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "internal error",
                )));
            }
        }
    }
    Ok(viewer)
}

fn verify(headers: &HeaderMap, keys: &SigningKeys) -> Result<Viewer, Box<Response>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Viewer::default());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return Err(Box::new(unauthorized("Authorization must be `Bearer <access token>`")));
    };
    match keys.verify_claims(token) {
        Ok(verified) => Ok(Viewer { user_id: Some(verified.user_id), device_id: verified.device_id }),
        Err(err) => {
            tracing::debug!(error = %err, "access token refused");
            Err(Box::new(unauthorized("access token is invalid or expired")))
        }
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    response
}
