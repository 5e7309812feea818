//! Database migrations for mobile-bff, run at server start and by `mobile-bff migrate`.
//!
//! Each migration is one module named by date and concern. Migrations are written with
//! sea-query so that the same code creates the schema on SQLite (embedded mode) and
//! PostgreSQL (cluster mode). Every list the API exposes has a keyset index that matches its
//! `ORDER BY` exactly, so that paging never sorts or scans.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_social;
mod m20261125_000002_idempotency;
mod m20261125_000003_persisted_documents;
mod m20261125_000004_auth;
mod m20261125_000005_biometrics;
mod m20261125_000006_oauth;
mod m20261125_000007_messaging;
mod m20261125_000008_events;
mod m20261203_000001_refresh_successor_keys;
mod m20261203_000002_versions;
mod m20261203_000003_jobs_and_push;
mod m20261204_000001_media;
mod m20261204_000002_sync;
mod m20261204_000003_feature_flags;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_social::Migration),
            Box::new(m20261125_000002_idempotency::Migration),
            Box::new(m20261125_000003_persisted_documents::Migration),
            Box::new(m20261125_000004_auth::Migration),
            Box::new(m20261125_000005_biometrics::Migration),
            Box::new(m20261125_000006_oauth::Migration),
            Box::new(m20261125_000007_messaging::Migration),
            Box::new(m20261125_000008_events::Migration),
            Box::new(m20261203_000001_refresh_successor_keys::Migration),
            Box::new(m20261203_000002_versions::Migration),
            Box::new(m20261203_000003_jobs_and_push::Migration),
            Box::new(m20261204_000002_sync::Migration),
            Box::new(m20261204_000003_feature_flags::Migration),
            Box::new(m20261204_000001_media::Migration),
        ]
    }
}
