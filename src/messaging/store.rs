//! Messaging queries: the inbox, conversations and their members, messages by sequence
//! number, and the per-screen aggregates (last message, unread count) in one statement per
//! batch.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
    Value,
};

use crate::{
    kernel::db::{
        keyset::{Keyset, Page},
        sql::{head_and_ids, placeholders},
    },
    messaging::entities::{conversation, conversation_member, message},
};

/// One page of `viewer`'s inbox, most recently active first.
pub async fn inbox_page(
    conn: &impl ConnectionTrait,
    viewer: i64,
    after: Option<Keyset>,
    limit: usize,
) -> Result<Page<conversation::Model>, DbErr> {
    let mut values: Vec<Value> = vec![viewer.into(), (limit as i64 + 1).into()];
    let keyset = match after {
        Some(after) => {
            values.push(after.created_at.into());
            values.push(after.id.into());
            "AND (c.last_activity_at < $3 OR (c.last_activity_at = $3 AND c.id < $4))"
        }
        None => "",
    };
    let sql = format!(
        "SELECT c.* FROM conversations c JOIN conversation_members m ON m.conversation_id = c.id \
         WHERE m.user_id = $1 {keyset} ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $2"
    );
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    let rows = conversation::Entity::find().from_raw_sql(stmt).all(conn).await?;
    Ok(Page::from_overfetch(rows, limit))
}

/// Conversations by id.
pub async fn conversations_by_ids(conn: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<conversation::Model>, DbErr> {
    conversation::Entity::find().filter(conversation::Column::Id.is_in(ids.iter().copied())).all(conn).await
}

/// The membership of `user_id` in a conversation, if any.
pub async fn membership(
    conn: &impl ConnectionTrait,
    conversation_id: i64,
    user_id: i64,
) -> Result<Option<conversation_member::Model>, DbErr> {
    conversation_member::Entity::find_by_id((conversation_id, user_id)).one(conn).await
}

/// Members of the given conversations, in join order.
pub async fn members_of(
    conn: &impl ConnectionTrait,
    conversation_ids: &[i64],
) -> Result<Vec<conversation_member::Model>, DbErr> {
    conversation_member::Entity::find()
        .filter(conversation_member::Column::ConversationId.is_in(conversation_ids.iter().copied()))
        .order_by_asc(conversation_member::Column::ConversationId)
        .order_by_asc(conversation_member::Column::JoinedAt)
        .order_by_asc(conversation_member::Column::UserId)
        .all(conn)
        .await
}

/// User ids of one conversation's members, ascending.
pub async fn member_ids(conn: &impl ConnectionTrait, conversation_id: i64) -> Result<Vec<i64>, DbErr> {
    conversation_member::Entity::find()
        .select_only()
        .column(conversation_member::Column::UserId)
        .filter(conversation_member::Column::ConversationId.eq(conversation_id))
        .order_by_asc(conversation_member::Column::UserId)
        .into_tuple::<i64>()
        .all(conn)
        .await
}

/// Everyone whose presence `user_id` shares: the other members of their direct conversations
/// and of groups with at most `max_group_members` members.
pub async fn contacts(conn: &impl ConnectionTrait, user_id: i64, max_group_members: usize) -> Result<Vec<i64>, DbErr> {
    let sql = "SELECT DISTINCT o.user_id AS user_id FROM conversation_members m \
               JOIN conversations c ON c.id = m.conversation_id \
               JOIN conversation_members o ON o.conversation_id = m.conversation_id \
               WHERE m.user_id = $1 AND o.user_id <> $1 AND (c.kind = 'direct' OR \
                 (SELECT COUNT(*) FROM conversation_members x WHERE x.conversation_id = c.id) <= $2) \
               ORDER BY o.user_id LIMIT 5000";
    #[derive(FromQueryResult)]
    struct Row {
        user_id: i64,
    }
    let limit = i64::try_from(max_group_members).unwrap_or(i64::MAX);
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, [user_id.into(), limit.into()]);
    Ok(Row::find_by_statement(stmt).all(conn).await?.into_iter().map(|r| r.user_id).collect())
}

/// The newest message of each given conversation.
pub async fn last_messages(
    conn: &impl ConnectionTrait,
    conversation_ids: &[i64],
) -> Result<Vec<message::Model>, DbErr> {
    if conversation_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id AND m.seq = c.last_seq \
         WHERE c.id IN ({})",
        placeholders(1, conversation_ids.len())
    );
    let values: Vec<Value> = conversation_ids.iter().map(|id| Value::from(*id)).collect();
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    message::Entity::find().from_raw_sql(stmt).all(conn).await
}

/// Unread messages (from others, after the read marker) of `viewer` per conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Unread {
    /// The conversation.
    pub conversation_id: i64,
    /// The viewer's read marker.
    pub last_read_seq: i64,
    /// Messages by others after the marker.
    pub unread: i64,
}

/// Read markers and unread counts of `viewer` in the given conversations.
pub async fn unread_counts(
    conn: &impl ConnectionTrait,
    viewer: i64,
    conversation_ids: &[i64],
) -> Result<Vec<Unread>, DbErr> {
    if conversation_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT mem.conversation_id AS conversation_id, mem.last_read_seq AS last_read_seq, \
           (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = mem.conversation_id \
              AND m.seq > mem.last_read_seq AND m.sender_id <> mem.user_id) AS unread \
         FROM conversation_members mem WHERE mem.user_id = $1 AND mem.conversation_id IN ({})",
        placeholders(2, conversation_ids.len())
    );
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, head_and_ids(viewer, conversation_ids));
    Unread::find_by_statement(stmt).all(conn).await
}

/// Messages of a conversation with `seq > after`, oldest first, at most `limit + 1`.
pub async fn messages_after(
    conn: &impl ConnectionTrait,
    conversation_id: i64,
    after: i64,
    limit: usize,
) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation_id))
        .filter(message::Column::Seq.gt(after))
        .order_by_asc(message::Column::Seq)
        .limit(limit as u64 + 1)
        .all(conn)
        .await
}

/// Messages of a conversation with `seq < before` (all when `None`), newest first, at most
/// `limit + 1`.
pub async fn messages_before(
    conn: &impl ConnectionTrait,
    conversation_id: i64,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<message::Model>, DbErr> {
    let mut query = message::Entity::find().filter(message::Column::ConversationId.eq(conversation_id));
    if let Some(before) = before {
        query = query.filter(message::Column::Seq.lt(before));
    }
    query.order_by_desc(message::Column::Seq).limit(limit as u64 + 1).all(conn).await
}

/// The message a sender already sent with this client id, if any.
pub async fn by_client_id(
    conn: &impl ConnectionTrait,
    conversation_id: i64,
    sender_id: i64,
    client_message_id: &str,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation_id))
        .filter(message::Column::SenderId.eq(sender_id))
        .filter(message::Column::ClientMessageId.eq(client_message_id))
        .one(conn)
        .await
}

/// Messages by id.
pub async fn messages_by_ids(conn: &impl ConnectionTrait, ids: &[i64]) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::find().filter(message::Column::Id.is_in(ids.iter().copied())).all(conn).await
}

/// Takes the next sequence number of a conversation (locking its row until the transaction
/// ends, so concurrent senders queue) and records the activity time; `None` if it does not
/// exist.
pub async fn next_seq(
    conn: &impl ConnectionTrait,
    conversation_id: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<i64>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        last_seq: i64,
    }
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = $1 WHERE id = $2 RETURNING last_seq",
        [at.into(), conversation_id.into()],
    );
    Ok(Row::find_by_statement(stmt).one(conn).await?.map(|r| r.last_seq))
}

/// Moves a member's read marker forward to `seq` (never backwards); true if it moved.
pub async fn advance_read_marker(
    conn: &impl ConnectionTrait,
    conversation_id: i64,
    user_id: i64,
    seq: i64,
) -> Result<bool, DbErr> {
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE conversation_members SET last_read_seq = $1 \
         WHERE conversation_id = $2 AND user_id = $3 AND last_read_seq < $1",
        [seq.into(), conversation_id.into(), user_id.into()],
    );
    Ok(conn.execute_raw(stmt).await?.rows_affected() > 0)
}
