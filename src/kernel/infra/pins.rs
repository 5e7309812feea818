//! Certificate-pinning support: SPKI SHA-256 pins of the current and backup keys, computed
//! from the configured certificate or public-key files (never typed in by hand) and published
//! at `/.well-known/pins.json` and in the `pins` query.
//!
//! A pin is `base64(SHA-256(SubjectPublicKeyInfo DER))`, the value iOS (`NSPinnedDomains`,
//! TrustKit) and Android (`network_security_config` `<pin digest="SHA-256">`, OkHttp
//! `CertificatePinner` after `sha256/`) expect.

use std::path::PathBuf;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::{
    Certificate,
    der::{Decode, DecodePem, Encode},
    spki::SubjectPublicKeyInfoOwned,
};

/// What a pinned key is for.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PinRole {
    /// The key the server presents now.
    Current,
    /// A key kept offline, ready to take over (so a rotation never bricks pinned apps).
    Backup,
}

/// A configured pin source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinSource {
    /// A PEM certificate or PEM public key.
    pub file: PathBuf,
    /// Current or backup.
    pub role: PinRole,
    /// When this key is planned to be rotated (RFC 3339), published as guidance.
    pub rotate_after: Option<DateTime<Utc>>,
}

/// A published pin.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    /// `base64(SHA-256(SPKI))`.
    pub sha256: String,
    /// Current or backup.
    pub role: PinRole,
    /// Certificate validity start, when the source is a certificate.
    pub not_before: Option<DateTime<Utc>>,
    /// Certificate validity end, when the source is a certificate.
    pub not_after: Option<DateTime<Utc>>,
    /// Planned rotation date.
    pub rotate_after: Option<DateTime<Utc>>,
}

/// Why pins could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// A file could not be read.
    #[error("pin file {0}: {1}")]
    Io(String, std::io::Error),
    /// A file is neither a PEM certificate nor a PEM public key.
    #[error("pin file {0} is not a PEM certificate or public key")]
    Format(String),
    /// Pins are configured without both a current and a backup key.
    #[error("pins need at least one current and one backup key")]
    Incomplete,
}

fn sha256_b64(der: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(der))
}

fn to_utc(time: x509_cert::time::Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(time.to_unix_duration().as_secs()).ok()?, 0)
}

/// Computes the pin of one source.
pub fn pin(source: &PinSource) -> Result<Pin, PinError> {
    let name = source.file.display().to_string();
    let text = std::fs::read_to_string(&source.file).map_err(|e| PinError::Io(name.clone(), e))?;
    if text.contains("BEGIN CERTIFICATE") {
        let cert = Certificate::from_pem(text.as_bytes()).map_err(|_| PinError::Format(name.clone()))?;
        let tbs = &cert.tbs_certificate;
        let spki = tbs.subject_public_key_info.to_der().map_err(|_| PinError::Format(name))?;
        return Ok(Pin {
            sha256: sha256_b64(&spki),
            role: source.role,
            not_before: to_utc(tbs.validity.not_before),
            not_after: to_utc(tbs.validity.not_after),
            rotate_after: source.rotate_after,
        });
    }
    let (label, der) = pem_rfc7468::decode_vec(text.trim().as_bytes()).map_err(|_| PinError::Format(name.clone()))?;
    if label != "PUBLIC KEY" || SubjectPublicKeyInfoOwned::from_der(&der).is_err() {
        return Err(PinError::Format(name));
    }
    Ok(Pin {
        sha256: sha256_b64(&der),
        role: source.role,
        not_before: None,
        not_after: None,
        rotate_after: source.rotate_after,
    })
}

/// Computes every pin; an empty configuration publishes none.
pub fn pins(sources: &[PinSource]) -> Result<Vec<Pin>, PinError> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let pins = sources.iter().map(pin).collect::<Result<Vec<_>, _>>()?;
    let has = |role| pins.iter().any(|p| p.role == role);
    if !has(PinRole::Current) || !has(PinRole::Backup) {
        return Err(PinError::Incomplete);
    }
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pins").join(name)
    }

    #[test]
    fn pins_match_openssl() {
        let sources = vec![
            PinSource { file: fixture("current.crt"), role: PinRole::Current, rotate_after: None },
            PinSource { file: fixture("backup.pub.pem"), role: PinRole::Backup, rotate_after: None },
        ];
        let pins = pins(&sources).expect("pins");
        // Values from openssl, see tests/fixtures/pins/README.md.
        assert_eq!(pins[0].sha256, "8UtriOU3vOrmE8ox9a7PXre/uQqZOBUDYm/aG2RDOj0=");
        assert_eq!(pins[1].sha256, "0OulgNJb4LVQI4q/bhAGtZmHL+IandAE+brJyAxAvVM=");
        assert_eq!(pins[0].not_after.map(|t| t.to_rfc3339()).as_deref(), Some("2027-11-25T10:47:14+00:00"));
        assert!(matches!(super::pins(&sources[..1]), Err(PinError::Incomplete)), "a backup is required");
        let bogus = PinSource { file: fixture("README.md"), role: PinRole::Backup, rotate_after: None };
        assert!(matches!(pin(&bogus), Err(PinError::Format(_))));
    }
}
