//! Settings of app versions, the bootstrap and feature flags (`[versions]`, `[bootstrap]` and
//! `[flags]` in the TOML file, `BFF_VERSIONS__*` / `BFF_BOOTSTRAP__*` / `BFF_FLAGS__*` in the
//! environment). The version values are the starting values: `mobile-bff versions set` stores
//! a platform's values in the database, and from then on the stored row wins for that platform.

use serde::{Deserialize, Serialize};

/// One platform's versions.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformVersions {
    /// Oldest version served (`2.0`, `2.0.0`, `2.0.0 (512)`); older apps get 426.
    pub minimum: Option<String>,
    /// Older apps are told to update (`SOFT`) but still served.
    pub recommended: Option<String>,
    /// Where the app is updated (App Store / Play Store / web URL).
    pub store_url: Option<String>,
}

/// `[versions]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VersionsSettings {
    /// iOS / iPadOS.
    pub ios: PlatformVersions,
    /// Android.
    pub android: PlatformVersions,
    /// Browsers.
    pub web: PlatformVersions,
    /// How often each replica re-reads the versions and maintenance rows, in seconds.
    pub refresh_seconds: u64,
    /// `Retry-After` during maintenance without an announced end, in seconds.
    pub maintenance_retry_after_seconds: u64,
}

impl Default for VersionsSettings {
    fn default() -> Self {
        Self {
            ios: PlatformVersions::default(),
            android: PlatformVersions::default(),
            web: PlatformVersions::default(),
            refresh_seconds: 2,
            maintenance_retry_after_seconds: 60,
        }
    }
}

impl VersionsSettings {
    /// Checks every configured version and URL.
    pub fn validate(&self) -> Result<(), String> {
        if self.refresh_seconds == 0 || self.refresh_seconds > 300 {
            return Err("versions.refresh_seconds must be 1..=300".into());
        }
        if self.maintenance_retry_after_seconds == 0 {
            return Err("versions.maintenance_retry_after_seconds must be positive".into());
        }
        for (platform, versions) in [("ios", &self.ios), ("android", &self.android), ("web", &self.web)] {
            super::admin::check_versions(versions).map_err(|err| format!("versions.{platform}: {err}"))?;
        }
        Ok(())
    }
}

/// `[bootstrap]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapSettings {
    /// Public URL of this API (`https://api.example.com`), for the URLs the bootstrap hands
    /// out; empty: `public_base_url`, and when that is empty too, paths (`/graphql`).
    pub api_base_url: String,
    /// `serverTime` is rounded down to this many seconds so that the bootstrap's ETag holds;
    /// the precise time is the `Date` header of every response (304s included).
    pub server_time_granularity_seconds: u64,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        Self { api_base_url: String::new(), server_time_granularity_seconds: 3600 }
    }
}

/// `[flags]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlagSettings {
    /// The `environment` of every evaluation context (`production`, `staging`): rules can
    /// target it. Empty: none.
    pub environment: String,
}
