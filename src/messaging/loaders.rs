//! Per-operation loaders of the inbox and conversation screens: conversations, their newest
//! message, the viewer's unread count and the members — one statement per level whatever
//! the number of conversations on screen.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use crate::messaging::store as messaging;
use crate::{
    config::DataLoaderSettings,
    kernel::{db::Db, graphql::batch_driver::BatchSpawner},
    messaging::{
        entities::{conversation, conversation_member, message},
        store::Unread,
    },
    social::LoadError,
};

/// What every messaging loader needs.
#[derive(Clone)]
pub struct Ctx {
    db: Db,
    viewer: i64,
}

/// Conversations by id.
pub struct ConversationLoader(Ctx);
/// The newest message by conversation id.
pub struct LastMessageLoader(Ctx);
/// The viewer's read marker and unread count by conversation id.
pub struct UnreadLoader(Ctx);
/// Members by conversation id.
pub struct MembersLoader(Ctx);
/// A page of a conversation's messages. Going through a loader (rather than awaiting the
/// database directly in the resolver) keeps the page in the same batching level as its
/// siblings (members, ...), so the senders of the page and the members are loaded in one
/// users batch.
pub struct MessagePageLoader(Ctx);

/// Key of [`MessagePageLoader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessagePageKey {
    /// The conversation.
    pub conversation_id: i64,
    /// `first`/`after` (oldest first after `cursor`) or `last`/`before` (newest first).
    pub forward: bool,
    /// The cursor seq (`after` or `before`), if any.
    pub cursor: Option<i64>,
    /// Page size; one more row is fetched to tell whether more exist.
    pub limit: usize,
}

impl Loader<i64> for ConversationLoader {
    type Value = conversation::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = messaging::conversations_by_ids(self.0.db.conn(), keys).await?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}

impl Loader<i64> for LastMessageLoader {
    type Value = message::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = messaging::last_messages(self.0.db.conn(), keys).await?;
        Ok(rows.into_iter().map(|row| (row.conversation_id, row)).collect())
    }
}

impl Loader<i64> for UnreadLoader {
    type Value = Unread;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = messaging::unread_counts(self.0.db.conn(), self.0.viewer, keys).await?;
        Ok(rows.into_iter().map(|row| (row.conversation_id, row)).collect())
    }
}

impl Loader<i64> for MembersLoader {
    type Value = Vec<conversation_member::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = messaging::members_of(self.0.db.conn(), keys).await?;
        let mut out: HashMap<i64, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(row.conversation_id).or_default().push(row);
        }
        Ok(out)
    }
}

impl Loader<MessagePageKey> for MessagePageLoader {
    type Value = Vec<message::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[MessagePageKey]) -> Result<HashMap<MessagePageKey, Self::Value>, Self::Error> {
        // One statement per page: a screen shows one conversation.
        let mut out = HashMap::with_capacity(keys.len());
        for key in keys {
            let conn = self.0.db.conn();
            let rows = if key.forward {
                messaging::messages_after(conn, key.conversation_id, key.cursor.unwrap_or(0), key.limit).await?
            } else {
                messaging::messages_before(conn, key.conversation_id, key.cursor, key.limit).await?
            };
            out.insert(*key, rows);
        }
        Ok(out)
    }
}

/// The messaging loaders of one operation.
pub struct MessagingLoaders {
    /// Conversations by id.
    pub conversations: DataLoader<ConversationLoader, HashMapCache>,
    /// Newest message per conversation.
    pub last_message: DataLoader<LastMessageLoader, HashMapCache>,
    /// Viewer's unread count per conversation.
    pub unread: DataLoader<UnreadLoader, HashMapCache>,
    /// Members per conversation.
    pub members: DataLoader<MembersLoader, HashMapCache>,
    /// Pages of messages.
    pub message_pages: DataLoader<MessagePageLoader, HashMapCache>,
}

fn loader<T: Send + Sync + 'static>(
    inner: T,
    spawner: &BatchSpawner,
    settings: &DataLoaderSettings,
) -> DataLoader<T, HashMapCache> {
    let spawner = spawner.clone();
    DataLoader::with_cache(inner, move |batch| spawner.spawn(batch), HashMapCache::default())
        .delay(std::time::Duration::from_micros(settings.delay_micros))
        .max_batch_size(settings.max_batch_size)
}

impl MessagingLoaders {
    /// A fresh set for one operation of `viewer`.
    pub fn new(db: Db, viewer: i64, spawner: &BatchSpawner, settings: &DataLoaderSettings) -> Self {
        let ctx = Ctx { db, viewer };
        Self {
            conversations: loader(ConversationLoader(ctx.clone()), spawner, settings),
            last_message: loader(LastMessageLoader(ctx.clone()), spawner, settings),
            unread: loader(UnreadLoader(ctx.clone()), spawner, settings),
            members: loader(MembersLoader(ctx.clone()), spawner, settings),
            message_pages: loader(MessagePageLoader(ctx), spawner, settings),
        }
    }

    /// Forgets every cached value (after a mutation).
    pub fn clear(&self) {
        self.conversations.clear::<i64>();
        self.last_message.clear::<i64>();
        self.unread.clear::<i64>();
        self.members.clear::<i64>();
        self.message_pages.clear::<MessagePageKey>();
    }
}
