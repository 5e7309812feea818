//! Bearer-token authentication of a request: no header means anonymous; a header that is
//! not a valid, unexpired access token signed by us is refused with 401 `UNAUTHENTICATED`
//! (the client should refresh its token), never silently treated as anonymous.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};

use super::errors::error_response;
use crate::{graphql::error::ErrorCode, infra::keys::SigningKeys, request::Viewer};

/// The viewer of a request, or the 401 response to send.
pub fn authenticate(headers: &HeaderMap, keys: &SigningKeys) -> Result<Viewer, Box<Response>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Viewer::default());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty() && token.len() <= 4096);
    let Some(token) = token else {
        return Err(Box::new(unauthorized("Authorization must be `Bearer <access token>`")));
    };
    match keys.verify(token) {
        Ok(user_id) => Ok(Viewer { user_id: Some(user_id) }),
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
