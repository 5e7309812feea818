//! Signed upload URLs: `createUpload` hands out a `PUT` URL on `/uploads/{id}` that carries its
//! expiry and an HMAC-SHA256 over the method, the upload id, the exact size and the expiry, so
//! the URL alone authorises sending exactly those bytes to exactly that upload until then.
//! The key is `media.url_signing_key`, or a random key generated once into
//! `data_dir/media-url-key` (0600).

use std::path::Path;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The generated key's file in `data_dir`.
pub const GENERATED_KEY_FILE: &str = "media-url-key";

/// The HMAC key of signed upload URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(***)")
    }
}

impl UrlSigner {
    /// The configured key, else the generated one in `data_dir` (created when absent).
    pub fn load(configured: &str, data_dir: &Path) -> std::io::Result<Self> {
        if !configured.trim().is_empty() {
            return Ok(Self { key: configured.trim().as_bytes().to_vec() });
        }
        let path = data_dir.join(GENERATED_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(Self { key: text.trim().as_bytes().to_vec() }),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
        let text = hex::encode(seed);
        write_private(&path, text.as_bytes())?;
        Ok(Self { key: text.into_bytes() })
    }

    fn mac(&self, upload_id: &str, size: i64, expires: i64) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).ok()?;
        mac.update(format!("PUT\n{upload_id}\n{size}\n{expires}").as_bytes());
        Some(mac)
    }

    /// The signature of a `PUT` of `size` bytes to `upload_id` valid until `expires` (Unix s).
    pub fn sign(&self, upload_id: &str, size: i64, expires: i64) -> String {
        self.mac(upload_id, size, expires)
            .map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Whether `signature` is valid for these values (compared in constant time).
    pub fn verify(&self, upload_id: &str, size: i64, expires: i64, signature: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature) else { return false };
        self.mac(upload_id, size, expires).is_some_and(|mac| mac.verify_slice(&bytes).is_ok())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_upload_size_and_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = UrlSigner::load("", dir.path()).expect("generated");
        let again = UrlSigner::load("", dir.path()).expect("reloaded");
        let sig = signer.sign("abc", 10, 1000);
        assert!(again.verify("abc", 10, 1000, &sig), "the generated key is reused");
        assert!(!signer.verify("abd", 10, 1000, &sig));
        assert!(!signer.verify("abc", 11, 1000, &sig));
        assert!(!signer.verify("abc", 10, 1001, &sig));
        assert!(!signer.verify("abc", 10, 1000, "garbage!"));
        assert!(!UrlSigner::load("other", dir.path()).expect("configured").verify("abc", 10, 1000, &sig));
    }
}
