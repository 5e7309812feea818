//! Access-token signing keys: Ed25519 (`EdDSA`) JWTs with a `kid`, published as a JWKS.
//!
//! The key comes from configuration (`auth.signing_key_pem`, PKCS#8 PEM) or, when none is
//! configured, is generated on first start into `<data_dir>/jwt-signing-key.pem` (mode 0600)
//! and reused afterwards, so that tokens survive restarts. The `kid` is the RFC 7638 JWK
//! thumbprint of the public key.
//!
//! A verified token is remembered (moka, bounded, until its expiry) so that the signature of a
//! token an app sends on every request is checked once, not per request. [`SigningKeys::forget_user`]
//! drops a user's entries; revocation must call it.

use std::path::Path;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding},
};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
        OctetKeyPairType, PublicKeyUse, ThumbprintHash,
    },
};
use serde::{Deserialize, Serialize};

use crate::config::AuthSettings;

/// File name of the generated key inside the data directory.
pub const GENERATED_KEY_FILE: &str = "jwt-signing-key.pem";

/// Why keys could not be loaded or a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The configured or stored key is not an Ed25519 PKCS#8 PEM key.
    #[error("signing key is not an Ed25519 PKCS#8 PEM key")]
    InvalidKey,
    /// The key file could not be read or written.
    #[error("signing key file: {0}")]
    Io(#[from] std::io::Error),
    /// The OS random source failed.
    #[error("random source unavailable")]
    Random,
    /// Signing failed.
    #[error("token signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Why a presented token was refused. The detail is for logs; clients only see
/// `UNAUTHENTICATED`.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Expired, not yet valid, bad signature, wrong issuer or audience, unknown `kid`,
    /// malformed.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id as a decimal string.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The device row the token was issued to (absent for development tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<i64>,
}

/// What a verified access token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The user.
    pub user_id: i64,
    /// The device session, if the token belongs to one.
    pub device_id: Option<i64>,
    /// The token's `exp` (seconds since the epoch).
    pub expires_at: i64,
}

/// The signing key set of one server.
pub struct SigningKeys {
    kid: String,
    /// Tokens already verified: token → (claims, `exp`).
    verified: moka::sync::Cache<String, (Verified, i64)>,
    /// Key deriving each refresh token of a family from the previous one.
    refresh_key: [u8; 32],
    encoding: EncodingKey,
    /// Verification keys by `kid`: the current key and retired ones kept until their tokens
    /// expire.
    decoding: std::collections::HashMap<String, DecodingKey>,
    jwks: JwkSet,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: u64,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Loads the configured key, or the generated one from `data_dir` (creating it if absent).
    pub fn load(settings: &AuthSettings, data_dir: &Path) -> Result<Self, KeyError> {
        let pem = if settings.signing_key_pem.expose().trim().is_empty() {
            load_or_generate(&data_dir.join(GENERATED_KEY_FILE))?
        } else {
            settings.signing_key_pem.expose().to_owned()
        };
        Self::from_pem(&pem, settings)
    }

    /// Builds the key set from a PKCS#8 PEM Ed25519 private key (plus the retired keys in
    /// `settings.previous_keys_pem`, which only verify).
    pub fn from_pem(pem: &str, settings: &AuthSettings) -> Result<Self, KeyError> {
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::InvalidKey)?;
        let der = signing.to_pkcs8_der().map_err(|_| KeyError::InvalidKey)?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let (kid, jwk, current) = verification_entry(&signing.verifying_key().to_bytes())?;
        let mut decoding = std::collections::HashMap::from([(kid.clone(), current)]);
        let mut jwks = vec![jwk];
        for previous in &settings.previous_keys_pem {
            let public = previous_public_key(previous.expose())?;
            let (old_kid, old_jwk, old_key) = verification_entry(&public)?;
            if decoding.insert(old_kid, old_key).is_none() {
                jwks.push(old_jwk);
            }
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = settings.leeway_seconds;
        validation.validate_nbf = true;
        let verified = moka::sync::Cache::builder()
            .max_capacity(50_000)
            .time_to_live(std::time::Duration::from_secs(settings.access_token_ttl_seconds + settings.leeway_seconds))
            .support_invalidation_closures()
            .build();
        let refresh_key: [u8; 32] = {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            hasher.update(b"mobile-bff refresh-token derivation v1\0");
            hasher.update(der.as_bytes());
            hasher.finalize().into()
        };
        Ok(Self {
            kid,
            verified,
            refresh_key,
            encoding,
            decoding,
            jwks: JwkSet { keys: jwks },
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_seconds: settings.access_token_ttl_seconds,
        })
    }

    /// The key id written into every token header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The access-token lifetime in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// The next refresh token of a family: HMAC-SHA256 of the previous one under a key derived
    /// from the signing key, so every replica derives the same successor (the grace window of
    /// concurrent refreshes relies on it) and nobody without the key can.
    ///
    /// Only for families started before per-family successor keys (their rows have none):
    /// a rotation of the signing key changes this derivation, see [`successor_token`].
    pub fn next_refresh_token(&self, previous: &str) -> String {
        successor_token(&self.refresh_key, previous)
    }

    /// Mints an access token for `user_id` valid for the configured lifetime (or `ttl`).
    pub fn mint(&self, user_id: i64, ttl_seconds: Option<u64>) -> Result<String, KeyError> {
        self.mint_for_device(user_id, None, ttl_seconds)
    }

    /// Mints an access token bound to a device session.
    pub fn mint_for_device(
        &self,
        user_id: i64,
        device_id: Option<i64>,
        ttl_seconds: Option<u64>,
    ) -> Result<String, KeyError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl_seconds.unwrap_or(self.ttl_seconds)).unwrap_or(i64::MAX / 2);
        let claims = AccessClaims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now.saturating_add(ttl),
            jti: uuid::Uuid::new_v4().to_string(),
            did: device_id,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }

    /// Verifies signature, `kid`, expiry, issuer and audience; returns the user id.
    pub fn verify(&self, token: &str) -> Result<i64, TokenError> {
        self.verify_claims(token).map(|v| v.user_id)
    }

    /// Verifies a token; returns its user and device.
    pub fn verify_claims(&self, token: &str) -> Result<Verified, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        if let Some((verified, exp)) = self.verified.get(token) {
            if now <= exp.saturating_add(leeway) {
                return Ok(verified);
            }
            self.verified.invalidate(token);
            return Err(TokenError::Invalid("expired".into()));
        }
        self.verify_signature(token)
    }

    /// Forgets every cached verification of `user_id`'s tokens (call on revocation).
    pub fn forget_user(&self, user_id: i64) {
        // Only fails when invalidation closures are not enabled, and they are.
        let _ = self.verified.invalidate_entries_if(move |_, (cached, _)| cached.user_id == user_id);
    }

    fn verify_signature(&self, token: &str) -> Result<Verified, TokenError> {
        if token.len() > 4096 {
            return Err(TokenError::Invalid("oversized".into()));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid("unexpected algorithm".into()));
        }
        let Some(key) = header.kid.as_deref().and_then(|kid| self.decoding.get(kid)) else {
            return Err(TokenError::Invalid("unknown kid".into()));
        };
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let user_id = data.claims.sub.parse::<i64>().map_err(|_| TokenError::Invalid("bad sub".into()))?;
        let verified = Verified { user_id, device_id: data.claims.did, expires_at: data.claims.exp };
        self.verified.insert(token.to_owned(), (verified, data.claims.exp));
        Ok(verified)
    }
}

/// HMAC-SHA256 of `previous` under `key`, base64url: the next refresh token of a family.
pub fn successor_token(key: &[u8], previous: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(previous.as_bytes());
    b64url(&mac.finalize().into_bytes())
}

/// The `kid`, JWK and verification key of an Ed25519 public key.
fn verification_entry(public: &[u8; 32]) -> Result<(String, Jwk, DecodingKey), KeyError> {
    let mut jwk = Jwk {
        common: CommonParameters::default(),
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: b64url(public),
        }),
    };
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
    Ok((kid, jwk, DecodingKey::from_ed_der(public)))
}

/// The public half of a retired key: a PKCS#8 private key or an SPKI public key, in PEM.
fn previous_public_key(pem: &str) -> Result<[u8; 32], KeyError> {
    use ed25519_dalek::{VerifyingKey, pkcs8::DecodePublicKey};
    if let Ok(signing) = SigningKey::from_pkcs8_pem(pem) {
        return Ok(signing.verifying_key().to_bytes());
    }
    VerifyingKey::from_public_key_pem(pem).map(|k| k.to_bytes()).map_err(|_| KeyError::InvalidKey)
}

fn load_or_generate(path: &Path) -> Result<String, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(pem) => return Ok(pem),
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
        Err(_) => {}
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| KeyError::Random)?;
    let signing = SigningKey::from_bytes(&seed);
    let pem = signing.to_pkcs8_pem(LineEnding::LF).map_err(|_| KeyError::InvalidKey)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    write_private(path, pem.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a new access-token signing key");
    Ok(pem.to_string())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Base64url without padding, as used by JOSE.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dir: &Path) -> SigningKeys {
        SigningKeys::load(&AuthSettings::default(), dir).expect("keys")
    }

    #[test]
    fn generated_key_is_reused_and_tokens_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = keys(dir.path());
        let second = keys(dir.path());
        assert_eq!(first.kid(), second.kid());
        let token = first.mint(42, None).expect("mint");
        assert_eq!(second.verify(&token).expect("verify"), 42);
    }

    #[test]
    fn foreign_and_expired_tokens_are_refused() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let ours = keys(a.path());
        let theirs = keys(b.path());
        let forged = theirs.mint(1, None).expect("mint");
        assert!(ours.verify(&forged).is_err());
        // Expired well beyond the leeway.
        let settings = AuthSettings { leeway_seconds: 0, ..Default::default() };
        let pem = std::fs::read_to_string(a.path().join(GENERATED_KEY_FILE)).expect("pem");
        let strict = SigningKeys::from_pem(&pem, &settings).expect("keys");
        let claims = AccessClaims {
            sub: "1".into(),
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
            iat: 1,
            exp: 2,
            jti: "x".into(),
            did: None,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(strict.kid().to_owned());
        let expired = jsonwebtoken::encode(&header, &claims, &strict.encoding).expect("encode");
        assert!(strict.verify(&expired).is_err());
        assert!(strict.verify("not.a.token").is_err());
    }

    #[test]
    fn rotated_keys_keep_old_tokens_valid_and_publish_both() {
        let old_dir = tempfile::tempdir().expect("tempdir");
        let new_dir = tempfile::tempdir().expect("tempdir");
        let old = keys(old_dir.path());
        let old_token = old.mint(5, None).expect("mint");
        let old_pem = std::fs::read_to_string(old_dir.path().join(GENERATED_KEY_FILE)).expect("pem");
        keys(new_dir.path());
        let new_pem = std::fs::read_to_string(new_dir.path().join(GENERATED_KEY_FILE)).expect("pem");
        let settings =
            AuthSettings { previous_keys_pem: vec![crate::config::Secret::new(old_pem)], ..Default::default() };
        let rotated = SigningKeys::from_pem(&new_pem, &settings).expect("rotated");
        assert_ne!(rotated.kid(), old.kid());
        assert_eq!(rotated.verify(&old_token).expect("old token still valid"), 5);
        let new_token = rotated.mint(6, None).expect("mint");
        assert_eq!(rotated.verify(&new_token).expect("new token"), 6);
        let kids: Vec<_> = rotated.jwks().keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
        assert_eq!(kids, vec![rotated.kid().to_owned(), old.kid().to_owned()]);
        // Once the retired key is dropped, its tokens are refused.
        let dropped = SigningKeys::from_pem(&new_pem, &AuthSettings::default()).expect("keys");
        assert!(dropped.verify(&old_token).is_err());
    }

    #[test]
    fn cached_verifications_respect_expiry_and_can_be_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = AuthSettings { leeway_seconds: 0, ..Default::default() };
        let keys = SigningKeys::load(&settings, dir.path()).expect("keys");
        let token = keys.mint(7, None).expect("mint");
        assert_eq!(keys.verify(&token).expect("first"), 7);
        assert_eq!(keys.verified.get(&token).map(|(v, _)| v.user_id), Some(7), "cached");
        keys.forget_user(7);
        keys.verified.run_pending_tasks();
        assert!(keys.verified.get(&token).is_none(), "forgotten");
        // A cached entry past its expiry is refused even before moka evicts it.
        let stale = Verified { user_id: 7, device_id: None, expires_at: chrono::Utc::now().timestamp() - 10 };
        keys.verified.insert(token.clone(), (stale, chrono::Utc::now().timestamp() - 10));
        assert!(keys.verify(&token).is_err());
    }
}
