//! `Conversation`, `Message` and `ConversationMember`, mapped from storage rows (or, for
//! messages delivered live, from the event payload — the same fields, no read).

use async_graphql::{
    ComplexObject, Context, Enum, ID, Object, SimpleObject,
    connection::{Connection, Edge},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};

use crate::app::app;
use crate::messaging::loaders::{MessagePageKey, MessagingLoaders};
use crate::social::loaders;
use crate::{
    kernel::graphql::{
        error::{ErrorCode, api_error, loader_error},
        ids::{self, NodeType},
        pagination::DEFAULT_PAGE_SIZE,
    },
    messaging::entities::{conversation, conversation_member},
    realtime::MessageRecord,
    social::User,
};

/// The messaging loaders of this operation.
pub fn messaging_loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a MessagingLoaders> {
    crate::kernel::graphql::context::lazy_data::<MessagingLoaders>(ctx).ok_or_else(|| {
        tracing::error!("messaging loaders missing");
        api_error(ErrorCode::Internal, "internal error")
    })
}

/// Direct (two people) or group.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversationKind {
    /// Two people; one conversation per pair.
    Direct,
    /// A named group.
    Group,
}

/// A conversation the viewer is a member of.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex, cache_control(private))]
pub struct Conversation {
    #[graphql(skip)]
    pub row_id: i64,
    /// Direct or group.
    pub kind: ConversationKind,
    /// Group title (null for direct conversations).
    pub title: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Time of the newest message (or of creation): the inbox order.
    pub last_activity_at: DateTime<Utc>,
    /// `seq` of the newest message (0 when empty).
    pub last_seq: i64,
}

impl From<conversation::Model> for Conversation {
    fn from(row: conversation::Model) -> Self {
        Self {
            row_id: row.id,
            kind: if row.kind == "group" { ConversationKind::Group } else { ConversationKind::Direct },
            title: row.title,
            created_at: row.created_at,
            last_activity_at: row.last_activity_at,
            last_seq: row.last_seq,
        }
    }
}

/// A message cursor: `base64url("messages|<seq>")`.
fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("messages|{seq}"))
}

fn decode_cursor(cursor: &str) -> async_graphql::Result<i64> {
    let invalid = || api_error(ErrorCode::BadUserInput, "invalid cursor");
    if cursor.len() > 64 {
        return Err(invalid());
    }
    let text =
        String::from_utf8(URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| invalid())?).map_err(|_| invalid())?;
    text.strip_prefix("messages|").and_then(|s| s.parse::<i64>().ok()).filter(|s| *s >= 0).ok_or_else(invalid)
}

fn page_size(value: Option<i32>, max: usize, name: &str) -> async_graphql::Result<usize> {
    usize::try_from(value.unwrap_or(DEFAULT_PAGE_SIZE))
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| api_error(ErrorCode::BadUserInput, format!("{name} must be between 1 and {max}")))
}

#[ComplexObject]
impl Conversation {
    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Conversation, self.row_id)
    }

    /// The newest message, if any.
    async fn last_message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        let row = messaging_loaders(ctx)?.last_message.load_one(self.row_id).await.map_err(loader_error)?;
        Ok(row.map(|m| Message(m.into())))
    }

    /// Messages from others after the viewer's read marker.
    async fn unread_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let row = messaging_loaders(ctx)?.unread.load_one(self.row_id).await.map_err(loader_error)?;
        Ok(row.map(|u| u.unread).unwrap_or(0))
    }

    /// The viewer's read marker: the highest `seq` they have read.
    async fn viewer_last_read_seq(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let row = messaging_loaders(ctx)?.unread.load_one(self.row_id).await.map_err(loader_error)?;
        Ok(row.map(|u| u.last_read_seq).unwrap_or(0))
    }

    /// Everyone in the conversation, in join order.
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ConversationMember>> {
        let rows = messaging_loaders(ctx)?.members.load_one(self.row_id).await.map_err(loader_error)?;
        Ok(rows.unwrap_or_default().into_iter().map(ConversationMember).collect())
    }

    /// Messages in `seq` order. `last`/`before` pages backwards from the newest (the
    /// conversation screen scrolling up); `first`/`after` pages forwards (catching up). Edges
    /// are always oldest first. Default: the newest 20.
    #[graphql(
        complexity = "crate::kernel::graphql::pagination::connection_complexity(child_complexity, first.or(last))"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size forwards, 1 to 100.")] first: Option<i32>,
        #[graphql(desc = "Cursor (or use the seq-based cursor of a message) to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size backwards, 1 to 100 (default 20).")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before (older messages).")] before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Message>> {
        let app = app(ctx)?;
        let max = app.settings.limits.max_page_size;
        if (first.is_some() || after.is_some()) && (last.is_some() || before.is_some()) {
            return Err(api_error(ErrorCode::BadUserInput, "use first/after or last/before, not both"));
        }
        let pages = &messaging_loaders(ctx)?.message_pages;
        if first.is_some() || after.is_some() {
            let limit = page_size(first, max, "first")?;
            let after_seq = after.as_deref().map(decode_cursor).transpose()?.unwrap_or(0);
            let key = MessagePageKey { conversation_id: self.row_id, forward: true, cursor: Some(after_seq), limit };
            let mut rows = pages.load_one(key).await.map_err(loader_error)?.unwrap_or_default();
            let has_next = rows.len() > limit;
            rows.truncate(limit);
            let mut connection = Connection::new(after_seq > 0, has_next);
            connection.edges.extend(rows.into_iter().map(|m| Edge::new(encode_cursor(m.seq), Message(m.into()))));
            Ok(connection)
        } else {
            let limit = page_size(last, max, "last")?;
            let before_seq = before.as_deref().map(decode_cursor).transpose()?;
            let key = MessagePageKey { conversation_id: self.row_id, forward: false, cursor: before_seq, limit };
            let mut rows = pages.load_one(key).await.map_err(loader_error)?.unwrap_or_default();
            let has_previous = rows.len() > limit;
            rows.truncate(limit);
            rows.reverse();
            let mut connection = Connection::new(has_previous, before_seq.is_some());
            connection.edges.extend(rows.into_iter().map(|m| Edge::new(encode_cursor(m.seq), Message(m.into()))));
            Ok(connection)
        }
    }
}

/// A message.
#[derive(Clone, Debug)]
pub struct Message(pub MessageRecord);

#[Object(cache_control(private))]
impl Message {
    /// Opaque global id.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Message, self.0.id)
    }

    /// Position in the conversation: 1, 2, 3, … without gaps.
    async fn seq(&self) -> i64 {
        self.0.seq
    }

    /// Global id of the conversation.
    async fn conversation_id(&self) -> ID {
        ids::encode(NodeType::Conversation, self.0.conversation_id)
    }

    /// Text.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// The id the sender's app gave the message (to match its optimistic copy).
    async fn client_message_id(&self) -> &str {
        &self.0.client_message_id
    }

    /// When the server stored it.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Who sent it.
    async fn sender(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let row = loaders(ctx)?.users.load_one(self.0.sender_id).await.map_err(loader_error)?;
        Ok(row.map(User::from))
    }

    /// The cursor of this message in `Conversation.messages` (resume after it).
    async fn cursor(&self) -> String {
        encode_cursor(self.0.seq)
    }
}

/// A member of a conversation and how far they have read.
pub struct ConversationMember(pub conversation_member::Model);

#[Object(cache_control(private))]
impl ConversationMember {
    /// The user.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let row = loaders(ctx)?.users.load_one(self.0.user_id).await.map_err(loader_error)?;
        Ok(row.map(User::from))
    }

    /// Their read marker (highest `seq` read).
    async fn last_read_seq(&self) -> i64 {
        self.0.last_read_seq
    }

    /// When they joined.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}
