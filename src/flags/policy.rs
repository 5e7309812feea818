//! The version policy every replica serves from: per platform the minimum and recommended
//! versions and the store URL, and the maintenance switch — the settings' starting values
//! overridden by the rows `mobile-bff versions set` and `mobile-bff maintenance` store.
//!
//! Requests read an in-memory snapshot ([`PolicyCell::current`], a lock and a reference
//! count). Each replica re-reads the two small tables every `versions.refresh_seconds` (2 s)
//! on a connection of its own, outside the statement counter, so a change made anywhere (the
//! command line, another replica) is served everywhere within that interval, on SQLite and
//! PostgreSQL alike. A failed read keeps the previous snapshot.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};

use super::{
    entities::{app_version_policy, maintenance_window},
    settings::{PlatformVersions, VersionsSettings},
    store,
};
use crate::kernel::{
    hooks::Refusal,
    request::{AppVersion, ClientInfo, Platform},
};

/// A configured version: parsed, and as the operator wrote it (normalised).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Threshold {
    /// Parsed.
    pub version: AppVersion,
    /// Normalised text (`2.0.0`, `2.0.0 (512)`): the `X-Min-App-Version` header and the API.
    pub text: Arc<str>,
}

impl Threshold {
    /// Parses a configured version; `None` for none, an error for garbage.
    pub fn parse(value: Option<&str>) -> Result<Option<Self>, super::FlagsError> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let version = AppVersion::parse(value).ok_or_else(|| super::FlagsError::InvalidVersion(value.to_owned()))?;
        Ok(Some(Self { text: version.to_string().into(), version }))
    }
}

/// Where a platform's values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The settings file (no stored row).
    Settings,
    /// A row stored by `versions set`.
    Database,
}

/// One platform's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformPolicy {
    /// Older apps are refused (426).
    pub minimum: Option<Threshold>,
    /// Older apps are told `SOFT`.
    pub recommended: Option<Threshold>,
    /// Where to update.
    pub store_url: Option<String>,
    /// Where the values come from.
    pub source: Source,
}

impl PlatformPolicy {
    fn from_values(values: &PlatformVersions, source: Source) -> Self {
        // Stored and configured values were validated when written; a row edited by hand
        // into garbage is ignored (logged), never a refusal of every app.
        let parse = |value: &Option<String>| {
            Threshold::parse(value.as_deref()).unwrap_or_else(|err| {
                tracing::warn!(error = %err, "ignoring an unparseable version in the version policy");
                None
            })
        };
        Self {
            minimum: parse(&values.minimum),
            recommended: parse(&values.recommended),
            store_url: values.store_url.clone().filter(|u| !u.is_empty()),
            source,
        }
    }
}

/// Maintenance, when on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maintenance {
    /// What to tell users.
    pub message: String,
    /// Announced end; maintenance ends by itself then.
    pub until: Option<DateTime<Utc>>,
}

/// How far behind the policy an app is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum UpdateStatus {
    /// Up to date (or the version is unknown).
    None,
    /// Below the recommended version: suggest updating.
    Soft,
    /// Below the minimum: refused until it updates.
    Force,
}

/// What every request is judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// iOS.
    pub ios: PlatformPolicy,
    /// Android.
    pub android: PlatformPolicy,
    /// Web.
    pub web: PlatformPolicy,
    /// Maintenance switch.
    pub maintenance: Option<Maintenance>,
    /// `Retry-After` without an announced end.
    retry_after_seconds: u64,
}

impl Policy {
    /// The settings' values overridden by the stored rows.
    pub fn build(
        settings: &VersionsSettings,
        rows: &[app_version_policy::Model],
        maintenance: Option<&maintenance_window::Model>,
    ) -> Self {
        let platform = |name: &str, configured: &PlatformVersions| match rows.iter().find(|r| r.platform == name) {
            Some(row) => PlatformPolicy::from_values(
                &PlatformVersions {
                    minimum: row.minimum_version.clone(),
                    recommended: row.recommended_version.clone(),
                    store_url: row.store_url.clone(),
                },
                Source::Database,
            ),
            None => PlatformPolicy::from_values(configured, Source::Settings),
        };
        Self {
            ios: platform("ios", &settings.ios),
            android: platform("android", &settings.android),
            web: platform("web", &settings.web),
            maintenance: maintenance
                .filter(|m| m.enabled)
                .map(|m| Maintenance { message: m.message.clone(), until: m.until }),
            retry_after_seconds: settings.maintenance_retry_after_seconds,
        }
    }

    /// The policy of `platform` (none for an unknown platform).
    pub fn platform(&self, platform: Option<Platform>) -> Option<&PlatformPolicy> {
        Some(match platform? {
            Platform::Ios => &self.ios,
            Platform::Android => &self.android,
            Platform::Web => &self.web,
        })
    }

    /// Maintenance in force at `now` (an announced end that has passed ends it).
    pub fn maintenance_at(&self, now: DateTime<Utc>) -> Option<&Maintenance> {
        self.maintenance.as_ref().filter(|m| m.until.is_none_or(|until| until > now))
    }

    /// Where `client` stands. An app that sent no parseable version, or no known platform,
    /// is `NONE`: it cannot be judged, and is served.
    pub fn status(&self, client: &ClientInfo) -> UpdateStatus {
        let (Some(policy), Some(version)) = (self.platform(client.platform), client.version()) else {
            return UpdateStatus::None;
        };
        let below = |threshold: &Option<Threshold>| threshold.as_ref().is_some_and(|t| version.is_below(&t.version));
        if below(&policy.minimum) {
            UpdateStatus::Force
        } else if below(&policy.recommended) {
            UpdateStatus::Soft
        } else {
            UpdateStatus::None
        }
    }

    /// Why `client`'s operations are refused at `now`, if they are: below the minimum first
    /// (it outlasts any maintenance), then maintenance.
    pub fn refusal(&self, client: &ClientInfo, now: DateTime<Utc>) -> Option<Refusal> {
        if self.status(client) == UpdateStatus::Force
            && let Some(policy) = self.platform(client.platform)
            && let Some(minimum) = &policy.minimum
        {
            return Some(Refusal::UpgradeRequired {
                min_version: minimum.text.to_string(),
                store_url: policy.store_url.clone(),
            });
        }
        let maintenance = self.maintenance_at(now)?;
        let retry_after_seconds = match maintenance.until {
            Some(until) => u64::try_from((until - now).num_seconds()).unwrap_or(1).clamp(1, 3600),
            None => self.retry_after_seconds,
        };
        Some(Refusal::Maintenance {
            message: maintenance.message.clone(),
            until: maintenance.until.map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            retry_after_seconds,
        })
    }
}

/// The snapshot requests read, replaced as the stored policy changes.
#[derive(Debug)]
pub struct PolicyCell {
    current: RwLock<Arc<Policy>>,
    settings: VersionsSettings,
}

impl PolicyCell {
    /// A cell holding the settings' values until the first load.
    pub fn new(settings: VersionsSettings) -> Self {
        let policy = Policy::build(&settings, &[], None);
        Self { current: RwLock::new(Arc::new(policy)), settings }
    }

    /// The policy now.
    pub fn current(&self) -> Arc<Policy> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Re-reads the stored rows through `conn`.
    pub async fn reload(&self, conn: &impl sea_orm::ConnectionTrait) -> Result<(), sea_orm::DbErr> {
        let (rows, maintenance) = store::load(conn).await?;
        let policy = Arc::new(Policy::build(&self.settings, &rows, maintenance.as_ref()));
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if **current != *policy {
            tracing::info!("app version policy changed");
            *current = policy;
        }
        Ok(())
    }
}

/// Re-reads the policy and the feature flags every `versions.refresh_seconds` on a connection
/// of its own (opened lazily, reopened after a failure). Holds the cells weakly: it ends with
/// its server.
pub fn spawn_refresher(
    cell: &Arc<PolicyCell>,
    flags: &Arc<super::catalog::FlagsCell>,
    database_url: String,
) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs(cell.settings.refresh_seconds.max(1));
    let cell = Arc::downgrade(cell);
    let flags = Arc::downgrade(flags);
    tokio::spawn(async move {
        let mut conn: Option<sea_orm::DatabaseConnection> = None;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (Some(cell), Some(flags)) = (cell.upgrade(), flags.upgrade()) else { return };
            if conn.is_none() {
                let mut options = sea_orm::ConnectOptions::new(database_url.clone());
                options.max_connections(1).min_connections(0).sqlx_logging(false);
                match sea_orm::Database::connect(options).await {
                    Ok(c) => conn = Some(c),
                    Err(err) => {
                        tracing::warn!(error = %err, "version policy: cannot connect; retrying");
                        continue;
                    }
                }
            }
            if let Some(c) = &conn
                && let Err(err) = async { cell.reload(c).await.and(flags.reload(c).await.map(|_| ())) }.await
            {
                tracing::warn!(error = %err, "version policy / flags: reload failed; keeping the previous ones");
                conn = None;
            }
        }
    })
}
