//! The variant ladder of a processed image and its URLs.
//!
//! Every variant is content-addressed: its key is `v/<sha256 of the uploaded bytes>/<width>.<ext>`
//! and its URL `<public_base_url>/media/<sha256>/<width>.<ext>` (`immutable`). The URL without
//! an extension, `/media/<sha256>/<width>`, negotiates the format from the request's `Accept`
//! (WebP when accepted, else JPEG; `Vary: Accept`). The widths are the configured ladder steps
//! narrower than the upright original plus the original's own width: never upscaled.

use serde::{Deserialize, Serialize};

/// A served encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
pub enum Encoding {
    /// Baseline JPEG (every client).
    Jpeg,
    /// Lossy WebP (iOS 14+, Android, every current browser).
    Webp,
}

impl Encoding {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// Parses an extension.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "webp" => Some(Self::Webp),
            _ => None,
        }
    }

    /// The best encoding an `Accept` header allows (WebP when it names `image/webp`).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let accepts_webp = accept.is_some_and(|accept| {
            accept.split(',').any(|item| {
                let mut parts = item.split(';');
                let kind = parts.next().unwrap_or_default().trim();
                let refused = parts.any(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
                });
                kind.eq_ignore_ascii_case("image/webp") && !refused
            })
        });
        if accepts_webp { Self::Webp } else { Self::Jpeg }
    }
}

/// One width of the ladder, in every encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// Size of the JPEG in bytes.
    pub jpeg_bytes: u64,
    /// Size of the WebP in bytes.
    pub webp_bytes: u64,
}

/// A processed image's ladder, narrowest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ladder {
    /// The steps, narrowest first; the last is the upright original's size.
    pub steps: Vec<Step>,
}

impl Ladder {
    /// The stored form (`None` or malformed: an empty ladder).
    pub fn from_json(value: Option<&serde_json::Value>) -> Self {
        value.and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
    }

    /// The stored form.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The narrowest step at least `target` pixels wide; the widest when none is.
    pub fn pick(&self, target: Option<u32>) -> Option<&Step> {
        let widest = self.steps.last();
        match target {
            None => widest,
            Some(target) => self.steps.iter().find(|s| s.width >= target).or(widest),
        }
    }
}

/// The widths for an upright original `width` pixels wide: ladder steps below it, then it.
pub fn widths(ladder: &[u32], width: u32) -> Vec<u32> {
    let mut widths: Vec<u32> = ladder.iter().copied().filter(|&w| w < width).collect();
    widths.sort_unstable();
    widths.dedup();
    widths.push(width);
    widths
}

/// The storage key of a variant.
pub fn key(hash: &str, width: u32, encoding: Encoding) -> String {
    format!("v/{hash}/{width}.{}", encoding.extension())
}

/// The public URL of a variant (`encoding` `None`: negotiated by `Accept`).
pub fn url(base: &str, hash: &str, width: u32, encoding: Option<Encoding>) -> String {
    let base = base.trim_end_matches('/');
    match encoding {
        Some(encoding) => format!("{base}/media/{hash}/{width}.{}", encoding.extension()),
        None => format!("{base}/media/{hash}/{width}"),
    }
}

/// True for a lowercase hex SHA-256.
pub fn is_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_never_upscales_and_picks_the_next_step() {
        let ladder = [160, 320, 640, 1080, 1440, 2048];
        assert_eq!(widths(&ladder, 1000), vec![160, 320, 640, 1000]);
        assert_eq!(widths(&ladder, 100), vec![100]);
        assert_eq!(widths(&ladder, 640), vec![160, 320, 640]);
        let steps = Ladder {
            steps: widths(&ladder, 3000)
                .into_iter()
                .map(|width| Step { width, height: width, jpeg_bytes: 1, webp_bytes: 1 })
                .collect(),
        };
        assert_eq!(steps.pick(Some(375 * 3)).map(|s| s.width), Some(1440));
        assert_eq!(steps.pick(Some(1)).map(|s| s.width), Some(160));
        assert_eq!(steps.pick(Some(5000)).map(|s| s.width), Some(3000));
        assert_eq!(steps.pick(None).map(|s| s.width), Some(3000));
    }

    #[test]
    fn accept_negotiates_webp_only_when_accepted() {
        assert_eq!(Encoding::negotiate(Some("image/avif,image/webp,image/apng,*/*;q=0.8")), Encoding::Webp);
        assert_eq!(Encoding::negotiate(Some("image/webp;q=0")), Encoding::Jpeg);
        assert_eq!(Encoding::negotiate(Some("image/*")), Encoding::Jpeg);
        assert_eq!(Encoding::negotiate(None), Encoding::Jpeg);
    }
}
