//! The operator's use cases behind `mobile-bff versions …` and `mobile-bff maintenance …`:
//! validate, store, and describe. Every replica picks a change up at its next policy refresh.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{
    FlagsError,
    entities::app_version_policy,
    policy::{Policy, Source, Threshold},
    settings::{PlatformVersions, VersionsSettings},
    store,
};
use crate::kernel::{db::Db, request::Platform};

/// What `versions set` changes; `None` keeps the current value, `Some("")` or
/// `Some("none")` clears it.
#[derive(Clone, Debug, Default)]
pub struct VersionChange {
    /// New minimum.
    pub minimum: Option<String>,
    /// New recommended version.
    pub recommended: Option<String>,
    /// New store URL.
    pub store_url: Option<String>,
}

/// Checks that `versions` parse, that the store URL is absolute, and that recommended is not
/// older than the minimum.
pub fn check_versions(versions: &PlatformVersions) -> Result<(), FlagsError> {
    let minimum = Threshold::parse(versions.minimum.as_deref())?;
    let recommended = Threshold::parse(versions.recommended.as_deref())?;
    if let (Some(minimum), Some(recommended)) = (&minimum, &recommended)
        && recommended.version.is_below(&minimum.version)
    {
        return Err(FlagsError::RecommendedBelowMinimum {
            minimum: minimum.text.to_string(),
            recommended: recommended.text.to_string(),
        });
    }
    if let Some(url) = versions.store_url.as_deref().filter(|u| !u.is_empty()) {
        if url.len() > 2048 {
            return Err(FlagsError::OutOfRange("the store URL is longer than 2048 characters".into()));
        }
        let parsed = url::Url::parse(url).map_err(|_| FlagsError::InvalidUrl(url.to_owned()))?;
        if parsed.cannot_be_a_base() && parsed.scheme() != "market" {
            return Err(FlagsError::InvalidUrl(url.to_owned()));
        }
    }
    Ok(())
}

/// `ios`, `android` or `web`.
pub fn parse_platform(value: &str) -> Result<Platform, FlagsError> {
    Platform::parse(value).ok_or_else(|| FlagsError::UnknownPlatform(value.to_owned()))
}

fn cleared(value: Option<String>, current: Option<String>) -> Option<String> {
    match value {
        None => current,
        Some(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("none") => None,
        Some(v) => Some(v.trim().to_owned()),
    }
}

/// Stores `change` for `platform` over its current values (stored row, else settings).
pub async fn set_versions(
    db: &Db,
    settings: &VersionsSettings,
    platform: Platform,
    change: VersionChange,
) -> Result<Policy, FlagsError> {
    let current = current_policy(db, settings).await?;
    let Some(now) = current.platform(Some(platform)) else {
        return Err(FlagsError::UnknownPlatform(platform.as_str().to_owned()));
    };
    let text = |t: &Option<Threshold>| t.as_ref().map(|t| t.text.to_string());
    let values = PlatformVersions {
        minimum: cleared(change.minimum, text(&now.minimum)),
        recommended: cleared(change.recommended, text(&now.recommended)),
        store_url: cleared(change.store_url, now.store_url.clone()),
    };
    check_versions(&values)?;
    let normalise = |v: Option<String>| -> Result<Option<String>, FlagsError> {
        Ok(Threshold::parse(v.as_deref())?.map(|t| t.text.to_string()))
    };
    let row = app_version_policy::Model {
        platform: platform.as_str().to_owned(),
        minimum_version: normalise(values.minimum)?,
        recommended_version: normalise(values.recommended)?,
        store_url: values.store_url,
        updated_at: crate::kernel::db::now(),
    };
    let tx = db.begin_write().await?;
    store::upsert_platform(&*tx, row).await?;
    tx.commit().await?;
    current_policy(db, settings).await
}

/// Turns maintenance on with `message` until `until` (if given), or off.
pub async fn set_maintenance(
    db: &Db,
    settings: &VersionsSettings,
    on: Option<(String, Option<DateTime<Utc>>)>,
) -> Result<Policy, FlagsError> {
    let (enabled, message, until) = match on {
        Some((message, until)) => {
            let message = message.trim().to_owned();
            if message.is_empty() || message.chars().count() > 1000 {
                return Err(FlagsError::OutOfRange("the maintenance message must be 1 to 1000 characters".into()));
            }
            if until.is_some_and(|u| u <= Utc::now()) {
                return Err(FlagsError::OutOfRange("--until must be in the future".into()));
            }
            (true, message, until)
        }
        None => (false, String::new(), None),
    };
    let tx = db.begin_write().await?;
    store::set_maintenance(&*tx, enabled, message, until).await?;
    tx.commit().await?;
    current_policy(db, settings).await
}

/// The policy as stored now.
pub async fn current_policy(db: &Db, settings: &VersionsSettings) -> Result<Policy, FlagsError> {
    let (rows, maintenance) = store::load(db.conn()).await?;
    Ok(Policy::build(settings, &rows, maintenance.as_ref()))
}

/// A table of the policy, for `versions list`.
pub fn describe(policy: &Policy) -> String {
    let mut out = String::from("platform  minimum        recommended    store_url  (source)\n");
    for platform in Platform::ALL {
        let Some(p) = policy.platform(Some(platform)) else { continue };
        let text = |t: &Option<Threshold>| t.as_ref().map_or("-".to_owned(), |t| t.text.to_string());
        let source = match p.source {
            Source::Settings => "settings",
            Source::Database => "database",
        };
        let _ = writeln!(
            out,
            "{:<9} {:<14} {:<14} {}  ({source})",
            platform.as_str(),
            text(&p.minimum),
            text(&p.recommended),
            p.store_url.as_deref().unwrap_or("-"),
        );
    }
    let _ = match policy.maintenance_at(Utc::now()) {
        Some(m) => writeln!(
            out,
            "maintenance: ON until {}: {}",
            m.until.map_or("turned off".to_owned(), |u| u.to_rfc3339()),
            m.message
        ),
        None => writeln!(out, "maintenance: off"),
    };
    out
}
