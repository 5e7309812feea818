//! Per-request values shared by the HTTP and GraphQL layers: who is calling ([`Viewer`]) and
//! from what app ([`ClientInfo`]). The HTTP layer parses them once; resolvers read them.

use crate::kernel::error::DomainError;

/// The authenticated user of a request, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Viewer {
    /// The user id from a verified access token; `None` for anonymous requests.
    pub user_id: Option<i64>,
    /// The device session the token belongs to (absent for development tokens).
    pub device_id: Option<i64>,
    /// The client device id (`X-Device-Id`) that device session registered with, looked up
    /// by the verifier: a header equal to it is the token's own device.
    pub client_device_id: Option<uuid::Uuid>,
}

impl Viewer {
    /// The user id, or `Unauthenticated`.
    pub fn require(&self) -> Result<i64, DomainError> {
        self.user_id.ok_or(DomainError::Unauthenticated)
    }

    /// The id used in viewer-relative queries (0 never matches a user).
    pub fn id_or_zero(&self) -> i64 {
        self.user_id.unwrap_or(0)
    }
}

/// The client platform from `X-Platform`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Platform {
    /// iOS / iPadOS.
    Ios,
    /// Android.
    Android,
    /// A browser (including the playground).
    Web,
    /// Missing or unrecognised.
    #[default]
    Unknown,
}

impl Platform {
    /// Parses `ios`, `android` or `web` (case-insensitive).
    pub fn parse(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "ios" => Self::Ios,
            "android" => Self::Android,
            "web" => Self::Web,
            _ => Self::Unknown,
        }
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Web => "web",
            Self::Unknown => "unknown",
        }
    }
}

/// What the app said about itself in its headers. Malformed values are dropped (treated as
/// absent) rather than failing the request: an old app with a bad header must still work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `X-App-Version`, a semantic version.
    pub app_version: Option<semver::Version>,
    /// `X-App-Build`, a build number or string (≤ 32 chars).
    pub app_build: Option<String>,
    /// `X-Platform`.
    pub platform: Platform,
    /// `X-Device-Id`, the client-generated device UUID.
    pub device_id: Option<uuid::Uuid>,
    /// `X-Timezone`, an IANA zone name such as `Europe/Paris`.
    pub timezone: Option<String>,
    /// First language tag of `Accept-Language`.
    pub locale: Option<String>,
}

impl ClientInfo {
    /// `major.minor` of the app version, for metric labels.
    pub fn version_label(&self) -> String {
        match &self.app_version {
            Some(v) => format!("{}.{}", v.major, v.minor),
            None => "unknown".to_owned(),
        }
    }
}

/// Accepts IANA-looking zone names (`Area/Location[/Sub]`, `UTC`); at most 64 characters.
pub fn valid_timezone(tz: &str) -> bool {
    (1..=64).contains(&tz.len())
        && tz.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'))
        && !tz.starts_with('/')
        && !tz.contains("..")
}

/// Accepts BCP 47-looking language tags (`en`, `pt-BR`, `zh-Hant-TW`); at most 35 chars.
pub fn valid_locale(tag: &str) -> bool {
    (2..=35).contains(&tag.len())
        && tag.split('-').all(|part| (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        assert_eq!(Platform::parse("iOS"), Platform::Ios);
        assert_eq!(Platform::parse("symbian"), Platform::Unknown);
        assert!(valid_timezone("America/Argentina/Buenos_Aires"));
        assert!(!valid_timezone("../../etc/passwd"));
        assert!(valid_locale("pt-BR"));
        assert!(!valid_locale("x"));
        let info = ClientInfo { app_version: semver::Version::parse("3.14.1").ok(), ..Default::default() };
        assert_eq!(info.version_label(), "3.14");
    }
}
