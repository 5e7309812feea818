//! The Relay `Node` interface.

use async_graphql::{ID, Interface};

use super::{comment::Comment, post::Post, user::User};
use crate::graphql::messaging::types::{Conversation, Message};

/// An object with a global id, fetchable with `node(id:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque global id."))]
pub enum Node {
    /// A user.
    User(User),
    /// A post.
    Post(Post),
    /// A comment.
    Comment(Comment),
    /// A conversation (only for its members).
    Conversation(Conversation),
    /// A message (only for members of its conversation).
    Message(Message),
}
