//! SeaORM entities of app versions, maintenance and feature flags, mirroring `migrations/`.

pub mod app_version_policy;
pub mod feature_flag;
pub mod feature_flag_audit;
pub mod feature_flag_segment;
pub mod maintenance_window;
