//! The one bearer-token verifier: every transport (HTTP, WebSocket `connection_init` and
//! re-auth pings, SSE) checks access tokens here — the `Bearer` scheme (any case), the
//! signature and expiry ([`SigningKeys::verify_claims`], which returns the claims with `exp`),
//! and that the token's device is still signed in ([`DeviceGate`]). The gate's answer also
//! carries the client device id the device registered with, so the viewer says which
//! `X-Device-Id` really is the token's device (the rate limiter counts only that one).

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::{
    app::App,
    kernel::{
        hooks::{AuthFailure, Credentials, Session, Verifier},
        request::Viewer,
    },
};

/// The token in `credentials`: `Bearer <token>` (scheme case-insensitive), or for
/// [`Credentials::Payload`] also the bare token.
pub fn bearer_token(credentials: &str, form: Credentials) -> Result<&str, AuthFailure> {
    let credentials = credentials.trim();
    let token = match credentials.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => return Err(AuthFailure::Malformed),
        None if form == Credentials::Payload => credentials,
        None => return Err(AuthFailure::Malformed),
    };
    if token.is_empty() {
        return Err(if form == Credentials::Payload { AuthFailure::Missing } else { AuthFailure::Malformed });
    }
    Ok(token)
}

/// [`Verifier`] over the app's signing keys and device gate.
pub struct BearerVerifier(pub Arc<App>);

impl BearerVerifier {
    async fn check(&self, credentials: &str, form: Credentials) -> Result<Session, AuthFailure> {
        let token = bearer_token(credentials, form)?;
        let verified = self.0.keys.verify_claims(token).map_err(|err| {
            tracing::debug!(error = %err, "access token refused");
            AuthFailure::Invalid
        })?;
        let mut client_device_id = None;
        if let Some(device_id) = verified.device_id {
            match self.0.gate.signed_in(verified.user_id, device_id).await {
                Ok(Some(signed_in)) => client_device_id = signed_in.client_device_id,
                Ok(None) => return Err(AuthFailure::Invalid),
                Err(err) => {
                    tracing::error!(error = %err, "revocation check failed");
                    return Err(AuthFailure::Internal);
                }
            }
        }
        let viewer = Viewer { user_id: Some(verified.user_id), device_id: verified.device_id, client_device_id };
        Ok(Session { viewer, expires_at: verified.expires_at })
    }
}

impl Verifier for BearerVerifier {
    fn verify<'a>(&'a self, credentials: &'a str, form: Credentials) -> BoxFuture<'a, Result<Session, AuthFailure>> {
        Box::pin(self.check(credentials, form))
    }

    fn still_signed_in(&self, user: i64, device: i64) -> BoxFuture<'_, bool> {
        Box::pin(async move { self.0.gate.allows(user, device).await.unwrap_or(true) })
    }

    fn revocations(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.0.gate.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_take_the_bearer_scheme_in_any_case() {
        assert_eq!(bearer_token("Bearer abc", Credentials::Header), Ok("abc"));
        assert_eq!(bearer_token("BEARER  abc ", Credentials::Header), Ok("abc"));
        assert_eq!(bearer_token("bearer abc", Credentials::Payload), Ok("abc"));
        assert_eq!(bearer_token("abc", Credentials::Payload), Ok("abc"));
        assert_eq!(bearer_token("abc", Credentials::Header), Err(AuthFailure::Malformed));
        assert_eq!(bearer_token("Basic abc", Credentials::Header), Err(AuthFailure::Malformed));
        assert_eq!(bearer_token("Bearer ", Credentials::Header), Err(AuthFailure::Malformed));
        assert_eq!(bearer_token("  ", Credentials::Payload), Err(AuthFailure::Missing));
    }
}
