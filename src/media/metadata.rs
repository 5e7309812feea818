//! tus `Upload-Metadata`, parsed strictly: comma-separated pairs of a key (printable ASCII
//! without spaces or commas) and an optional base64 value (standard alphabet, padded),
//! separated by one space. Duplicate keys, empty keys, bad base64 and oversized headers are
//! refused rather than guessed at.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::media::MediaError;

/// Longest `Upload-Metadata` header accepted.
pub const MAX_BYTES: usize = 4096;
/// Most pairs accepted.
pub const MAX_PAIRS: usize = 32;

/// The pairs of an `Upload-Metadata` value (a key without value maps to an empty value).
pub fn parse(header: &str) -> Result<HashMap<String, Vec<u8>>, MediaError> {
    let bad = |why: &str| MediaError::invalid(format!("Upload-Metadata: {why}"));
    if header.len() > MAX_BYTES {
        return Err(bad("longer than 4096 bytes"));
    }
    let mut pairs = HashMap::new();
    if header.is_empty() {
        return Ok(pairs);
    }
    for pair in header.split(',') {
        let (key, value) = match pair.split_once(' ') {
            Some((key, value)) => (key, Some(value)),
            None => (pair, None),
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(bad("every key must be non-empty printable ASCII without spaces or commas"));
        }
        let value = match value {
            Some(value) if value.contains(' ') => return Err(bad("a value must be one base64 word")),
            Some(value) => STANDARD.decode(value).map_err(|_| bad(&format!("the value of {key} is not base64")))?,
            None => Vec::new(),
        };
        if pairs.insert(key.to_owned(), value).is_some() {
            return Err(bad(&format!("{key} appears twice")));
        }
        if pairs.len() > MAX_PAIRS {
            return Err(bad("more than 32 pairs"));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_and_malformed_headers_are_refused() {
        let parsed = parse("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential").expect("valid");
        assert_eq!(parsed["filename"], b"world_domination_plan.pdf");
        assert_eq!(parsed["is_confidential"], b"");
        assert!(parse("").expect("empty").is_empty());
        for bad in ["filename !!!", "a x,a eQ==", " eQ==", "k eQ== extra", "f\u{e9} eQ=="] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&"k".repeat(5000)).is_err());
    }
}
