//! SeaORM entities of accounts and sessions, mirroring `migrations/`.

pub mod biometric_challenge;
pub mod credential;
pub mod device;
pub mod device_key;
pub mod oauth_code;
pub mod refresh_token;
pub mod security_event;
