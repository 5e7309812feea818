//! The `[auth]` settings section and registered OAuth2 clients.

use serde::{Deserialize, Serialize};

use crate::kernel::settings::Secret;

/// Access-token settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Ed25519 signing key in PKCS#8 PEM. Empty: generated into `data_dir` on first start.
    pub signing_key_pem: Secret,
    /// Retired signing keys (PKCS#8 private or SPKI public PEM) still accepted for verification
    /// and published in the JWKS until the tokens they signed have expired.
    pub previous_keys_pem: Vec<Secret>,
    /// `iss` claim written and required.
    pub issuer: String,
    /// `aud` claim written and required.
    pub audience: String,
    /// Access-token lifetime in seconds (5 to 30 minutes).
    pub access_token_ttl_seconds: u64,
    /// Clock skew tolerated when checking `exp`/`nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Sliding refresh-token lifetime: each rotation extends the session by this many days.
    pub refresh_sliding_days: u64,
    /// Absolute cap of a refresh-token family (a session), in days.
    pub refresh_absolute_days: u64,
    /// Window in which the same used refresh token from the same device gets the same new pair
    /// back instead of a family revocation (apps fire concurrent refreshes).
    pub refresh_grace_seconds: u64,
    /// argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    pub argon2_iterations: u32,
    /// How long a device's "not revoked" answer is cached, in seconds (revocation on this
    /// replica is immediate; other replicas see it within this time).
    pub revocation_cache_seconds: u64,
    /// How long a biometric challenge may be answered, in seconds.
    pub biometric_challenge_seconds: u64,
    /// What a refresh whose device signals contradict the record does: `record` (a security
    /// event and a notice to the user) or `step_up` (also refused: the user signs in again).
    pub device_signals: crate::auth::signals::SignalPolicy,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            signing_key_pem: Secret::default(),
            previous_keys_pem: Vec::new(),
            issuer: "mobile-bff".to_owned(),
            audience: "mobile-bff".to_owned(),
            access_token_ttl_seconds: 15 * 60,
            leeway_seconds: 30,
            refresh_sliding_days: 60,
            refresh_absolute_days: 365,
            refresh_grace_seconds: 10,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            revocation_cache_seconds: 5,
            biometric_challenge_seconds: 60,
            device_signals: Default::default(),
        }
    }
}

/// A registered OAuth2 public client.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    /// The `client_id`.
    pub client_id: String,
    /// Exact redirect URIs allowed: custom schemes (`com.example.app:/oauth`) or https app links.
    pub redirect_uris: Vec<String>,
}
