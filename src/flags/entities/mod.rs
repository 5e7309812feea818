//! SeaORM entities of app versions and maintenance, mirroring `migrations/`.

pub mod app_version_policy;
pub mod maintenance_window;
