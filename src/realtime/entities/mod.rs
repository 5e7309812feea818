//! SeaORM entities of the event log and presence, mirroring `migrations/`.

pub mod event_ack;
pub mod event_head;
pub mod user_event;
pub mod user_presence;
