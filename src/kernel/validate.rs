//! Input rules shared by the use cases: text lengths, URLs, handles, keys.

use crate::kernel::error::DomainError;

/// Trims `text` and checks that it has between 1 and `max` characters.
pub fn text(field: &str, text: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(format!("{field} must not be empty")));
    }
    if trimmed.chars().count() > max {
        return Err(DomainError::invalid(format!("{field} must be at most {max} characters")));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(DomainError::invalid(format!("{field} must not contain control characters")));
    }
    Ok(trimmed.to_owned())
}

/// An absolute `http`/`https` URL of at most 2048 bytes, returned normalised.
pub fn link(link: &str) -> Result<String, DomainError> {
    if link.len() > 2048 {
        return Err(DomainError::invalid("links must be at most 2048 bytes"));
    }
    let parsed = url::Url::parse(link.trim())
        .map_err(|_| DomainError::invalid(format!("not a valid URL: {}", truncate(link, 80))))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(DomainError::invalid("links must be http or https URLs"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(DomainError::invalid("links must not contain credentials"));
    }
    Ok(parsed.to_string())
}

/// A client idempotency key: 8 to 128 characters of `[A-Za-z0-9_.:-]` (UUIDs fit).
pub fn idempotency_key(key: &str) -> Result<String, DomainError> {
    let ok = (8..=128).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(key.to_owned())
    } else {
        Err(DomainError::invalid("idempotencyKey must be 8 to 128 characters of letters, digits, '_', '-', '.', ':'"))
    }
}

/// A media storage key: 1 to 200 characters of `[A-Za-z0-9/_.-]`, no `..`, no leading `/`.
pub fn storage_key(key: &str) -> Result<String, DomainError> {
    let ok = (1..=200).contains(&key.len())
        && !key.starts_with('/')
        && !key.contains("..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
    if ok {
        Ok(key.to_owned())
    } else {
        Err(DomainError::invalid("media storageKey must be a relative key of [A-Za-z0-9/_.-]"))
    }
}

/// A BlurHash string: 6 to 100 characters of the base-83 alphabet.
pub fn blurhash(hash: &str) -> Result<String, DomainError> {
    const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
    let ok = (6..=100).contains(&hash.len()) && hash.chars().all(|c| ALPHABET.contains(c));
    if ok { Ok(hash.to_owned()) } else { Err(DomainError::invalid("media blurhash is not a valid BlurHash")) }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert_eq!(text("body", "  hi  ", 10).expect("ok"), "hi");
        assert!(text("body", "   ", 10).is_err());
        assert!(text("body", "abcdefghijk", 10).is_err());
        assert!(text("body", "a\u{0}b", 10).is_err());
    }

    #[test]
    fn link_rules() {
        assert!(link("https://example.com/a?b=c").is_ok());
        assert!(link("javascript:alert(1)").is_err());
        assert!(link("ftp://example.com").is_err());
        assert!(link("https://user:pw@example.com").is_err());
        assert!(link("not a url").is_err());
    }

    #[test]
    fn key_rules() {
        assert!(idempotency_key("0b6f5a9e-7d1c-4b0e-9d8e-2f1a3c4b5d6e").is_ok());
        assert!(idempotency_key("short").is_err());
        assert!(idempotency_key("has space in it").is_err());
        assert!(storage_key("seed/1/0.jpg").is_ok());
        assert!(storage_key("../etc/passwd").is_err());
        assert!(storage_key("/abs").is_err());
        assert!(blurhash("LEHV6nWB2yk8pyo0adR*.7kCMdnj").is_ok());
        assert!(blurhash("<script>").is_err());
    }
}
