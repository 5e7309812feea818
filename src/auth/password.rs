//! Password hashing with argon2id, stored as a PHC string
//! (`$argon2id$v=19$m=…,t=…,p=1$<salt>$<hash>`), verified in constant time.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};

use crate::config::AuthSettings;

/// Why hashing failed (never for user input: only parameters or the random source).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The argon2 parameters are invalid.
    #[error("argon2: {0}")]
    Argon2(String),
    /// The OS random source failed.
    #[error("random source unavailable")]
    Random,
}

fn argon2(memory_kib: u32, iterations: u32) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(memory_kib, iterations, 1, Some(32)).map_err(|e| PasswordError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with a fresh 16-byte salt.
pub fn hash(password: &str, settings: &AuthSettings) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let (m, t) = (settings.argon2_memory_kib, settings.argon2_iterations);
    let mut out = [0u8; 32];
    argon2(m, t)?
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .map_err(|e| PasswordError::Argon2(e.to_string()))?;
    Ok(format!("$argon2id$v=19$m={m},t={t},p=1${}${}", STANDARD_NO_PAD.encode(salt), STANDARD_NO_PAD.encode(out)))
}

/// Checks `password` against a stored PHC string; any malformed hash is a mismatch.
pub fn verify(password: &str, phc: &str) -> bool {
    let parts: Vec<&str> = phc.split('$').collect();
    let [_, "argon2id", "v=19", params, salt, expected] = parts.as_slice() else {
        return false;
    };
    let mut m = None;
    let mut t = None;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("m", v)) => m = v.parse::<u32>().ok(),
            Some(("t", v)) => t = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    let (Some(m), Some(t), Ok(salt), Ok(expected)) =
        (m, t, STANDARD_NO_PAD.decode(salt), STANDARD_NO_PAD.decode(expected))
    else {
        return false;
    };
    let Ok(hasher) = argon2(m, t) else {
        return false;
    };
    let mut out = vec![0u8; expected.len().clamp(16, 64)];
    if hasher.hash_password_into(password.as_bytes(), &salt, &mut out).is_err() {
        return false;
    }
    constant_time_eq(&out, &expected)
}

/// Compares without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let settings = AuthSettings { argon2_memory_kib: 1024, argon2_iterations: 1, ..Default::default() };
        let a = hash("correct horse", &settings).expect("hash");
        let b = hash("correct horse", &settings).expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(verify("correct horse", &a));
        assert!(!verify("wrong", &a));
        assert!(!verify("correct horse", "$argon2id$v=19$garbage"));
    }
}
