//! Device signals: what a sign-in or a refresh says about the device it comes from (platform,
//! OS version, model), checked against the device's record. A contradiction — another
//! platform under the same client device id, an OS version older than the recorded one,
//! another model — is a security event the user is told about (a `SECURITY` push to their
//! devices). Under `auth.device_signals = "step_up"`, a refresh with a strong contradiction
//! (platform, OS going backwards: a copied token, not an updated phone) is refused and the
//! device signed out, so the user signs in again; a model change alone stays a notice (a new
//! phone restored from a backup keeps its Keychain, and so its client device id).

use serde::{Deserialize, Serialize};

use crate::{auth::entities::device, kernel::request::Platform};

/// What to do with a strong contradiction on refresh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalPolicy {
    /// Record the event and tell the user; the refresh goes through.
    #[default]
    Record,
    /// Record, tell, and refuse the refresh (`STEP_UP_REQUIRED`): the device is signed out.
    StepUp,
}

/// What a request says about its device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// `X-Platform` / `DeviceInput.platform`.
    pub platform: Option<Platform>,
    /// `X-OS-Version` / `DeviceInput.osVersion`.
    pub os_version: Option<String>,
    /// `DeviceInput.model` (sign-in only).
    pub model: Option<String>,
}

/// One signal that disagrees with the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Contradiction {
    /// Another platform.
    Platform {
        /// Recorded.
        from: String,
        /// Presented.
        to: String,
    },
    /// An older OS version than recorded.
    OsDowngrade {
        /// Recorded.
        from: String,
        /// Presented.
        to: String,
    },
    /// Another model.
    Model {
        /// Recorded.
        from: String,
        /// Presented.
        to: String,
    },
}

impl Contradiction {
    /// Whether it points at a copied credential rather than a changed device.
    pub fn is_strong(&self) -> bool {
        !matches!(self, Self::Model { .. })
    }
}

/// Dotted numeric versions (`17.4.1`) in order; `None` when either is not one.
fn older(presented: &str, recorded: &str) -> Option<bool> {
    let parse = |v: &str| v.split('.').map(|p| p.parse::<u64>().ok()).collect::<Option<Vec<u64>>>();
    let (a, b) = (parse(presented.trim())?, parse(recorded.trim())?);
    Some(a < b)
}

/// How `signals` contradict `record` (empty when they agree or say nothing).
pub fn contradictions(record: &device::Model, signals: &Signals) -> Vec<Contradiction> {
    let mut found = Vec::new();
    if let Some(platform) = signals.platform
        && platform.as_str() != record.platform
    {
        found.push(Contradiction::Platform { from: record.platform.clone(), to: platform.as_str().to_owned() });
    }
    if let Some(os) = signals.os_version.as_deref().filter(|v| !v.is_empty())
        && !record.os_version.is_empty()
        && older(os, &record.os_version) == Some(true)
    {
        found.push(Contradiction::OsDowngrade { from: record.os_version.clone(), to: os.to_owned() });
    }
    if let Some(model) = signals.model.as_deref().filter(|m| !m.is_empty())
        && !record.model.is_empty()
        && model != record.model
    {
        found.push(Contradiction::Model { from: record.model.clone(), to: model.to_owned() });
    }
    found
}

/// Whether `presented` is a newer OS version than `recorded` (the record should follow it).
pub fn os_upgraded(presented: &str, recorded: &str) -> bool {
    older(recorded, presented) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> device::Model {
        device::Model {
            id: 1,
            user_id: 1,
            client_device_id: "c".into(),
            platform: "ios".into(),
            model: "iPhone15,2".into(),
            os_version: "18.1".into(),
            app_version: "3.2.0".into(),
            locale: String::new(),
            timezone: String::new(),
            push_token: None,
            push_provider: None,
            push_environment: None,
            push_token_updated_at: None,
            push_token_dead_at: None,
            push_token_dead_reason: None,
            created_at: chrono::Utc::now(),
            last_seen_at: chrono::Utc::now(),
            revoked_at: None,
        }
    }

    #[test]
    fn agreeing_or_silent_signals_contradict_nothing() {
        assert!(contradictions(&record(), &Signals::default()).is_empty());
        let same = Signals { platform: Some(Platform::Ios), os_version: Some("18.1".into()), model: None };
        assert!(contradictions(&record(), &same).is_empty());
        let upgraded = Signals { os_version: Some("18.2.1".into()), ..Signals::default() };
        assert!(contradictions(&record(), &upgraded).is_empty());
        assert!(os_upgraded("18.2.1", "18.1"));
        let garbage = Signals { os_version: Some("eighteen".into()), ..Signals::default() };
        assert!(contradictions(&record(), &garbage).is_empty());
    }

    #[test]
    fn another_platform_an_older_os_and_another_model_are_told_apart() {
        let copied = Signals {
            platform: Some(Platform::Android),
            os_version: Some("17.0".into()),
            model: Some("Pixel 8".into()),
        };
        let found = contradictions(&record(), &copied);
        assert_eq!(found.len(), 3);
        assert!(found[0].is_strong() && found[1].is_strong() && !found[2].is_strong());
        assert_eq!(found[1], Contradiction::OsDowngrade { from: "18.1".into(), to: "17.0".into() });
        assert!(!os_upgraded("17.0", "18.1"));
    }
}
