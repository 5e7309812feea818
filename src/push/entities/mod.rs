//! The push concern's tables (the push token itself lives on the device row,
//! `crate::auth::entities::device`).

pub mod notification;
