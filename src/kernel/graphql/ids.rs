//! Relay global ids: opaque, typed ids (`base64url("Post:42")`) for every `Node`.
//!
//! Clients must treat them as opaque strings; the server decodes the type and row id and
//! refuses ids of the wrong type or shape with `BAD_USER_INPUT`.

use async_graphql::ID;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::kernel::graphql::error::{ErrorCode, api_error};

/// Types that have global ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    /// `User`
    User,
    /// `Post`
    Post,
    /// `Comment`
    Comment,
    /// `Device` (not a `Node`: only its owner sees it)
    Device,
    /// `Conversation`
    Conversation,
    /// `Message`
    Message,
    /// `Notification` (not a `Node`: only its recipient sees it)
    Notification,
}

impl NodeType {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Post => "Post",
            Self::Comment => "Comment",
            Self::Device => "Device",
            Self::Conversation => "Conversation",
            Self::Message => "Message",
            Self::Notification => "Notification",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "User" => Some(Self::User),
            "Post" => Some(Self::Post),
            "Comment" => Some(Self::Comment),
            "Device" => Some(Self::Device),
            "Conversation" => Some(Self::Conversation),
            "Message" => Some(Self::Message),
            "Notification" => Some(Self::Notification),
            _ => None,
        }
    }
}

/// The global id of row `id` of type `ty`.
pub fn encode(ty: NodeType, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{id}", ty.as_str())))
}

/// Decodes any global id into its type and row id.
pub fn decode(id: &ID) -> async_graphql::Result<(NodeType, i64)> {
    let invalid = || api_error(ErrorCode::BadUserInput, "invalid id");
    if id.len() > 64 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(id.as_bytes()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ty, raw) = text.split_once(':').ok_or_else(invalid)?;
    let ty = NodeType::parse(ty).ok_or_else(invalid)?;
    let row = raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(invalid)?;
    Ok((ty, row))
}

/// Decodes a global id that must be of type `expected`.
pub fn decode_as(id: &ID, expected: NodeType) -> async_graphql::Result<i64> {
    match decode(id)? {
        (ty, row) if ty == expected => Ok(row),
        _ => Err(api_error(ErrorCode::BadUserInput, format!("id is not a {} id", expected.as_str()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let id = encode(NodeType::Post, 42);
        assert_eq!(decode(&id).expect("valid"), (NodeType::Post, 42));
        assert!(decode_as(&id, NodeType::User).is_err());
        assert!(decode(&ID("!!!".into())).is_err());
        assert!(decode(&ID(URL_SAFE_NO_PAD.encode("Post:-1"))).is_err());
        assert!(decode(&ID(URL_SAFE_NO_PAD.encode("Secret:1"))).is_err());
    }
}
