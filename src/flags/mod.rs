//! What the server tells an installed app about itself: the minimum and recommended version
//! per platform (apps below the minimum are refused with 426 on every transport), the
//! maintenance switch (503 for everything), and the `bootstrap` query that answers anyway so
//! the app can show its upgrade or maintenance screen. Changed at runtime with
//! `mobile-bff versions set` / `mobile-bff maintenance on|off`, stored in the database and
//! picked up by every replica within `versions.refresh_seconds`. Feature flags live here too:
//! Unleash's feature model ([`definition`]) evaluated with OpenFeature's reasons
//! ([`evaluate`], [`hash`]), a per-replica snapshot ([`catalog`]), served in the bootstrap,
//! the `flags` query ([`graphql`]) and OFREP ([`ofrep`]), managed and audited by
//! `mobile-bff flags` ([`manage`]). See docs/versioning.md.
//!
//! - [`policy`]: the snapshot every request is judged by, and its refresher;
//! - [`gate`]: the kernel's `ClientGate` hook over it;
//! - [`bootstrap`]: the `bootstrap` query;
//! - [`admin`]: the command-line use cases; [`store`] and [`entities`]: the two tables;
//! - [`settings`]: `[versions]` and `[bootstrap]`; [`error`]: [`FlagsError`].

pub mod admin;
pub mod bootstrap;
pub mod catalog;
pub mod context;
pub mod definition;
pub mod entities;
pub mod error;
pub mod evaluate;
pub mod gate;
pub mod graphql;
pub mod hash;
pub mod manage;
pub mod ofrep;
pub mod policy;
pub mod settings;
mod specification;
pub mod store;

pub use error::FlagsError;
