//! The push concern's tables (the push token itself lives on the device row,
//! `crate::auth::device_entity as device`).

pub mod notification;
