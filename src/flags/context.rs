//! The evaluation context of a request: the signed-in user (or, signed out, the device) to
//! stick to, and the app's own headers as properties (`platform`, `appVersion`, `appBuild`,
//! `osVersion`, `locale`, `timezone`, `deviceId`), so rules target what the app says it is.

use std::net::IpAddr;

use super::evaluate::Context;
use crate::kernel::request::{ClientInfo, Platform};

/// The context of a request by `user` (if signed in) from `client` at `ip`.
pub fn for_request(user: Option<i64>, client: &ClientInfo, ip: Option<IpAddr>, environment: &str) -> Context {
    let mut context = Context {
        user_id: user.map(|u| u.to_string()),
        session_id: client.device_id.map(|d| d.to_string()),
        remote_address: ip.map(|ip| ip.to_string()),
        environment: Some(environment.to_owned()).filter(|e| !e.is_empty()),
        app_name: None,
        current_time: None,
        properties: Default::default(),
    };
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            context.properties.insert(name.to_owned(), value);
        }
    };
    set("platform", client.platform.map(|p| Platform::as_str(p).to_owned()));
    set("appVersion", client.app_version.as_ref().map(ToString::to_string));
    set("appBuild", client.app_build.clone());
    set("osVersion", client.os_version.clone());
    set("locale", client.locale.clone());
    set("timezone", client.timezone.clone());
    set("deviceId", client.device_id.map(|d| d.to_string()));
    context
}
