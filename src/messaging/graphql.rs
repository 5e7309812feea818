//! Messaging in the API: the inbox (`conversations`), one conversation with its messages,
//! and the mutations that start conversations, send messages and move read markers. Every
//! mutation publishes the events it appended once its transaction has committed.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, connection::Connection};

use crate::app::app;
use crate::kernel::graphql::{
    context::viewer,
    error::{DomainResultExt, db_error, loader_error},
    ids::{self, NodeType},
    pagination::{ListKind, PageArgs, connection, connection_complexity},
};
use crate::messaging::store;
use crate::messaging::types::{Conversation, Message, messaging_loaders};
use crate::social::loaders as social_loaders;
use crate::{
    kernel::{db::keyset::Keyset, error::DomainError},
    messaging::conversations::{self, NewMessage},
};

/// A conversation of the viewer by row id, or `NOT_FOUND` (also for non-members: whether a
/// conversation exists is nobody else's business).
pub async fn member_conversation(ctx: &Context<'_>, row: i64) -> async_graphql::Result<Conversation> {
    let viewer = viewer(ctx).require().api()?;
    let app = app(ctx)?;
    if !conversations::is_member(&app.db, row, viewer).await.api()? {
        return Err(DomainError::NotFound("conversation")).api();
    }
    let found = messaging_loaders(ctx)?.conversations.load_one(row).await.map_err(loader_error)?;
    found.map(Conversation::from).ok_or(DomainError::NotFound("conversation")).api()
}

/// Messaging reads.
#[derive(Default)]
pub struct MessagingQuery;

#[Object]
impl MessagingQuery {
    /// The viewer's inbox: conversations, most recently active first. A conversation with a
    /// new message moves to the top (refresh from the start to see it).
    #[graphql(complexity = "connection_complexity(child_complexity, first)", cache_control(private))]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor of the last edge already shown.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Conversation>> {
        let viewer = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        let args =
            PageArgs::parse(ListKind::Conversations, first, after.as_deref(), app.settings.limits.max_page_size)?;
        let page = store::inbox_page(app.db.conn(), viewer, args.after, args.first).await.map_err(db_error)?;
        let loaders = messaging_loaders(ctx)?;
        for row in &page.rows {
            loaders.conversations.feed_one(row.id, row.clone()).await;
        }
        Ok(connection(
            ListKind::Conversations,
            page,
            args.after.is_some(),
            |c| Keyset { created_at: c.last_activity_at, id: c.id },
            |c| Some(Conversation::from(c)),
        ))
    }

    /// One of the viewer's conversations (`NOT_FOUND` if they are not a member).
    #[graphql(cache_control(private))]
    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Conversation> {
        let row = ids::decode_as(&id, NodeType::Conversation)?;
        member_conversation(ctx, row).await
    }
}

/// Input of `startConversation`.
#[derive(InputObject)]
pub struct StartConversationInput {
    /// The other person.
    pub user_id: ID,
}

/// Input of `createGroup`.
#[derive(InputObject)]
pub struct CreateGroupInput {
    /// Title, 1 to 100 characters.
    pub title: String,
    /// The other members (the viewer is added).
    pub member_ids: Vec<ID>,
    /// Client key making retries safe.
    pub idempotency_key: Option<String>,
}

/// Input of `sendMessage`.
#[derive(InputObject)]
pub struct SendMessageInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The app's id for the message (8–128 chars of `[A-Za-z0-9_.:-]`, e.g. a UUID): a
    /// retry with the same id returns the first message instead of sending twice.
    pub client_message_id: String,
    /// Text, 1 to 4000 characters.
    pub body: String,
}

/// Input of `markRead`.
#[derive(InputObject)]
pub struct MarkReadInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The highest `seq` the viewer has seen (clamped to the newest message).
    pub seq: i64,
}

/// Result of `startConversation` and `createGroup`.
#[derive(SimpleObject)]
pub struct ConversationPayload {
    /// The conversation.
    pub conversation: Conversation,
}

/// Result of `sendMessage`.
#[derive(SimpleObject)]
pub struct SendMessagePayload {
    /// The stored message (the first one when this was a retry).
    pub message: Message,
    /// Its conversation, updated.
    pub conversation: Conversation,
}

/// Result of `markRead`.
#[derive(SimpleObject)]
pub struct MarkReadPayload {
    /// The viewer's read marker now.
    pub last_read_seq: i64,
    /// The conversation, with its updated unread count.
    pub conversation: Conversation,
}

/// Messaging writes.
#[derive(Default)]
pub struct MessagingMutation;

fn clear_caches(ctx: &Context<'_>) -> async_graphql::Result<()> {
    social_loaders(ctx)?.clear();
    messaging_loaders(ctx)?.clear();
    Ok(())
}

#[Object]
impl MessagingMutation {
    /// Opens the direct conversation with a user (the existing one if there is one: calling
    /// it twice is safe).
    async fn start_conversation(
        &self,
        ctx: &Context<'_>,
        input: StartConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let viewer = viewer(ctx).require().api()?;
        let other = ids::decode_as(&input.user_id, NodeType::User)?;
        let app = app(ctx)?;
        let (created, events) =
            conversations::start_direct(&app.db, &app.settings.realtime, viewer, other).await.api()?;
        app.bus.publish(events);
        clear_caches(ctx)?;
        Ok(ConversationPayload { conversation: member_conversation(ctx, created.conversation_id).await? })
    }

    /// Creates a group with the viewer and the given users.
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        input: CreateGroupInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let viewer = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        let members = input
            .member_ids
            .iter()
            .map(|id| ids::decode_as(id, NodeType::User))
            .collect::<async_graphql::Result<Vec<i64>>>()?;
        let key = input.idempotency_key.as_deref();
        let (created, events) = conversations::create_group(
            &app.db,
            &app.settings.idempotency,
            &app.settings.realtime,
            viewer,
            key,
            &input.title,
            members,
        )
        .await
        .api()?;
        app.bus.publish(events);
        clear_caches(ctx)?;
        Ok(ConversationPayload { conversation: member_conversation(ctx, created.conversation_id).await? })
    }

    /// Sends a message. Idempotent by `clientMessageId`: a retry returns the same message
    /// (same `id` and `seq`) and sends nothing twice.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<SendMessagePayload> {
        let viewer = viewer(ctx).require().api()?;
        let conversation_id = ids::decode_as(&input.conversation_id, NodeType::Conversation)?;
        let app = app(ctx)?;
        let new = NewMessage { conversation_id, client_message_id: input.client_message_id, body: input.body };
        let (message, events) = conversations::send(&app.db, &app.settings.realtime, viewer, new).await.api()?;
        app.bus.publish(events);
        clear_caches(ctx)?;
        let conversation = member_conversation(ctx, conversation_id).await?;
        Ok(SendMessagePayload { message: Message(message.into()), conversation })
    }

    /// Moves the viewer's read marker forward (never backwards; repeating it is harmless).
    async fn mark_read(&self, ctx: &Context<'_>, input: MarkReadInput) -> async_graphql::Result<MarkReadPayload> {
        let viewer = viewer(ctx).require().api()?;
        let conversation_id = ids::decode_as(&input.conversation_id, NodeType::Conversation)?;
        let app = app(ctx)?;
        let (last_read_seq, events) =
            conversations::mark_read(&app.db, &app.settings.realtime, viewer, conversation_id, input.seq)
                .await
                .api()?;
        app.bus.publish(events);
        clear_caches(ctx)?;
        let conversation = member_conversation(ctx, conversation_id).await?;
        Ok(MarkReadPayload { last_read_seq, conversation })
    }
}

/// `node(id:)` for a conversation: null unless the viewer is a member.
pub async fn node_conversation(ctx: &Context<'_>, row: i64) -> async_graphql::Result<Option<Conversation>> {
    let Some(viewer) = viewer(ctx).user_id else { return Ok(None) };
    if !conversations::is_member(&app(ctx)?.db, row, viewer).await.api()? {
        return Ok(None);
    }
    let found = messaging_loaders(ctx)?.conversations.load_one(row).await.map_err(loader_error)?;
    Ok(found.map(Conversation::from))
}

/// `node(id:)` for a message: null unless the viewer is a member of its conversation.
pub async fn node_message(ctx: &Context<'_>, row: i64) -> async_graphql::Result<Option<Message>> {
    let Some(viewer) = viewer(ctx).user_id else { return Ok(None) };
    let app = app(ctx)?;
    let Some(found) = store::messages_by_ids(app.db.conn(), &[row]).await.map_err(db_error)?.pop() else {
        return Ok(None);
    };
    if !conversations::is_member(&app.db, found.conversation_id, viewer).await.api()? {
        return Ok(None);
    }
    Ok(Some(Message(found.into())))
}
