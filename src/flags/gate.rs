//! The kernel's [`ClientGate`] hook over the policy snapshot: `X-Min-App-Version` for every
//! response, the refusal of apps below the minimum and of everything during maintenance, and
//! `bootstrap` as the one root field that always answers.

use std::sync::Arc;

use super::policy::PolicyCell;
use crate::kernel::{
    hooks::{ClientGate, Refusal},
    request::ClientInfo,
};

/// The root fields the gate never refuses.
pub const EXEMPT_ROOT_FIELDS: &[&str] = &["bootstrap"];

/// The gate over the policy every replica refreshes.
pub struct VersionGate(pub Arc<PolicyCell>);

impl ClientGate for VersionGate {
    fn min_version(&self, client: &ClientInfo) -> Option<Arc<str>> {
        let policy = self.0.current();
        policy.platform(client.platform)?.minimum.as_ref().map(|m| m.text.clone())
    }

    fn check(&self, client: &ClientInfo) -> Result<(), Refusal> {
        match self.0.current().refusal(client, chrono::Utc::now()) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    fn exempt_root_fields(&self) -> &'static [&'static str] {
        EXEMPT_ROOT_FIELDS
    }
}
