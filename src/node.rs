//! The Relay `Node` interface.

use async_graphql::{ID, Interface};

use crate::messaging::types::{Conversation, Message};
use crate::social::types::{comment::Comment, post::Post, user::User};

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
