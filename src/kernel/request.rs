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

/// The platform a device runs.
// One enum for `X-Platform`, the device registry and the API's `DevicePlatform`; an absent
// or unrecognised platform is `None` where one is optional (`ClientInfo::platform`).
#[derive(async_graphql::Enum, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[graphql(name = "DevicePlatform")]
pub enum Platform {
    /// iOS / iPadOS.
    Ios,
    /// Android.
    Android,
    /// A browser.
    #[default]
    Web,
}

impl Platform {
    /// Every platform.
    pub const ALL: [Platform; 3] = [Platform::Ios, Platform::Android, Platform::Web];

    /// Parses `ios`, `android` or `web` (case-insensitive, trimmed).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "ios" => Some(Self::Ios),
            "android" => Some(Self::Android),
            "web" => Some(Self::Web),
            _ => None,
        }
    }

    /// The stored form and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Web => "web",
        }
    }

    /// The label of an optional platform: `unknown` when absent.
    pub fn label(platform: Option<Self>) -> &'static str {
        platform.map_or("unknown", Self::as_str)
    }
}

/// An app version as apps send it, with the build number that breaks ties between builds
/// of one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppVersion {
    /// The version, without build metadata (`1.2` is `1.2.0`).
    pub version: semver::Version,
    /// The build number: from `X-App-Build` when numeric, else from the version string
    /// (`1.2.3 (456)` or `1.2.3+456`).
    pub build: Option<u64>,
}

impl AppVersion {
    /// Parses the forms apps send: `1`, `1.2`, `1.2.3`, `v1.2.3`, `1.2.3-beta.1`,
    /// `1.2.3 (456)`, `1.2.3+456`. Anything else (more than three numbers, letters in a
    /// number, numbers beyond 10^9, more than 64 characters) is `None`: treated as absent.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() || value.len() > 64 {
            return None;
        }
        let (core, mut build) = match value.strip_suffix(')').and_then(|v| v.rsplit_once('(')) {
            Some((core, build)) => (core.trim_end(), Some(parse_build(build.trim())?)),
            None => (value, None),
        };
        let core = core.strip_prefix(['v', 'V']).unwrap_or(core);
        let (core, metadata) = match core.split_once('+') {
            Some((core, metadata)) => (core, Some(metadata)),
            None => (core, None),
        };
        if let Some(metadata) = metadata {
            // Build metadata that is a number is the build; other metadata is ignored.
            if build.is_none() && !metadata.is_empty() && metadata.bytes().all(|b| b.is_ascii_digit()) {
                build = parse_build(metadata);
            }
        }
        let (numbers, pre) = match core.split_once('-') {
            Some((numbers, pre)) => (numbers, Some(pre)),
            None => (core, None),
        };
        let mut parts = [0u64; 3];
        for (count, part) in numbers.split('.').enumerate() {
            if count == 3 || part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[count] = part.parse().ok()?;
        }
        let mut version = semver::Version::new(parts[0], parts[1], parts[2]);
        if let Some(pre) = pre {
            version.pre = semver::Prerelease::new(pre).ok().filter(|p| !p.is_empty())?;
        }
        Some(Self { version, build })
    }

    /// Whether this version is older than `minimum`: an older version, or the same version
    /// with a smaller build when both name a build (a version without a build is not older
    /// than a build of itself).
    pub fn is_below(&self, minimum: &AppVersion) -> bool {
        match self.version.cmp(&minimum.version) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => matches!((self.build, minimum.build), (Some(c), Some(m)) if c < m),
        }
    }
}

impl std::fmt::Display for AppVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.build {
            Some(build) => write!(f, "{} ({build})", self.version),
            None => write!(f, "{}", self.version),
        }
    }
}

/// A build number: 1 to 18 digits.
fn parse_build(value: &str) -> Option<u64> {
    (!value.is_empty() && value.len() <= 18 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

/// What the app said about itself in its headers. Malformed values are dropped (treated as
/// absent) rather than failing the request: an old app with a bad header must still work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `X-App-Version` without build metadata (`1.2` is `1.2.0`, see [`AppVersion::parse`]).
    pub app_version: Option<semver::Version>,
    /// The build number: `X-App-Build` when it is a number, else the one in `X-App-Version`
    /// (`1.2.3 (456)`).
    pub app_build_number: Option<u64>,
    /// `X-App-Build`, a build number or string (≤ 32 chars).
    pub app_build: Option<String>,
    /// `X-Platform` (`None` when missing or unrecognised).
    pub platform: Option<Platform>,
    /// `X-Device-Id`, the client-generated device UUID.
    pub device_id: Option<uuid::Uuid>,
    /// `X-Timezone`, an IANA zone name such as `Europe/Paris`.
    pub timezone: Option<String>,
    /// First language tag of `Accept-Language`.
    pub locale: Option<String>,
    /// `X-OS-Version` (`17.4.1`): digits and dots, at most 32 characters.
    pub os_version: Option<String>,
    /// The client's IP address (set by the operation pipeline; `None` outside an operation).
    pub ip: Option<std::net::IpAddr>,
}

impl ClientInfo {
    /// The app version with its build number, when the app sent a parseable version.
    pub fn version(&self) -> Option<AppVersion> {
        self.app_version.clone().map(|version| AppVersion { version, build: self.app_build_number })
    }

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
        assert_eq!(Platform::parse("iOS"), Some(Platform::Ios));
        assert_eq!(Platform::parse("symbian"), None);
        assert!(valid_timezone("America/Argentina/Buenos_Aires"));
        assert!(!valid_timezone("../../etc/passwd"));
        assert!(valid_locale("pt-BR"));
        assert!(!valid_locale("x"));
        let info = ClientInfo { app_version: semver::Version::parse("3.14.1").ok(), ..Default::default() };
        assert_eq!(info.version_label(), "3.14");
    }

    #[test]
    fn app_versions_as_apps_send_them() {
        let v = |s: &str| AppVersion::parse(s).map(|v| v.to_string());
        assert_eq!(v("1.2").as_deref(), Some("1.2.0"));
        assert_eq!(v("1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(v("2").as_deref(), Some("2.0.0"));
        assert_eq!(v(" v1.2.3 ").as_deref(), Some("1.2.3"));
        assert_eq!(v("1.2.3 (456)").as_deref(), Some("1.2.3 (456)"));
        assert_eq!(v("1.2.3(456)").as_deref(), Some("1.2.3 (456)"));
        assert_eq!(v("1.2.3+456").as_deref(), Some("1.2.3 (456)"));
        assert_eq!(v("1.2.3+sha.abc").as_deref(), Some("1.2.3"));
        assert_eq!(v("2.0.0-beta.1").as_deref(), Some("2.0.0-beta.1"));
        for garbage in [
            "",
            "abc",
            "1..2",
            "1.2.3.4",
            "1.2.x",
            "-1.2",
            "1.2.3 (abc)",
            "1.2.3 (",
            "99999999999.0",
            "1.2.3-",
            "1.2.3-be ta",
            "((((",
            "1.2.3 (456",
            "٣.٤",
            "1.2.3 (99999999999999999999)",
            "NaN",
            ".1.2",
        ] {
            assert_eq!(AppVersion::parse(garbage), None, "{garbage:?}");
        }
        assert_eq!(AppVersion::parse(&"1.".repeat(40)), None);
        let at = |s: &str| AppVersion::parse(s).expect("version");
        assert!(at("1.9.9").is_below(&at("2.0")));
        assert!(at("2.0.0-beta.1").is_below(&at("2.0.0")));
        assert!(!at("2.0.0").is_below(&at("2.0")));
        assert!(!at("2.0.1").is_below(&at("2.0.0 (500)")));
        assert!(at("2.0.0 (499)").is_below(&at("2.0.0 (500)")));
        assert!(!at("2.0.0 (500)").is_below(&at("2.0.0 (500)")));
        assert!(!at("2.0.0").is_below(&at("2.0.0 (500)")), "no build: not refused for the build alone");
        assert!(!at("2.0.0 (1)").is_below(&at("2.0.0")));
    }
}
