//! Bearer-token authentication of an HTTP request: no `Authorization` header means
//! anonymous; a header that is not a valid, unexpired access token of a signed-in device is
//! refused with 401 `UNAUTHENTICATED` (the client should refresh its token), never silently
//! treated as anonymous. The token itself is checked by the concerns' [`Verifier`].

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

use super::errors::error_response;
use crate::kernel::{
    graphql::error::ErrorCode,
    hooks::{AuthFailure, Credentials, Verifier},
    request::Viewer,
};

/// The viewer of a request, or the 401 (500 when the check itself failed) to send.
pub async fn authenticate(headers: &HeaderMap, verifier: &dyn Verifier) -> Result<Viewer, Box<Response>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Viewer::default());
    };
    let Ok(value) = value.to_str() else {
        return Err(Box::new(unauthorized(AuthFailure::Malformed)));
    };
    // Boxed by the verifier: the check's future (a cache and maybe a database read) is
    // kilobytes, which inline would enlarge every handler future that authenticates.
    match verifier.verify(value, Credentials::Header).await {
        Ok(session) => Ok(session.viewer),
        Err(AuthFailure::Internal) => {
            Err(Box::new(error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error")))
        }
        Err(failure) => Err(Box::new(unauthorized(failure))),
    }
}

fn unauthorized(failure: AuthFailure) -> Response {
    let message = match failure {
        AuthFailure::Malformed | AuthFailure::Missing => "Authorization must be `Bearer <access token>`",
        AuthFailure::Invalid | AuthFailure::Internal => "access token is invalid or expired",
    };
    let mut response = error_response(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    response
}
