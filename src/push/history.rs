//! The in-app notification history: the viewer's notifications newest first (keyset
//! cursors), the unread count (the app's badge), and marking one or all read. Every
//! notification sent (`push send`, later the triggers) is recorded here whether or not a
//! device could be pushed to.

use async_graphql::{Context, ID, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use crate::app::app;
use crate::{
    kernel::{
        db::{
            self,
            keyset::{Keyset, Page, older_than},
        },
        graphql::{
            context::viewer,
            error::{DomainResultExt, db_error},
            ids::{self, NodeType},
            pagination::{ListKind, PageArgs, connection, connection_complexity},
        },
        idempotency::{self, Attempt},
        validate,
    },
    push::{
        entities::notification,
        payload::{Category, Priority},
    },
};

/// A notification in the viewer's history.
#[derive(SimpleObject)]
pub struct Notification {
    /// Opaque id (also sent in the push as `nid`, decoded: the row id).
    pub id: ID,
    /// Category.
    pub category: Category,
    /// Priority.
    pub priority: Priority,
    /// Title (empty for silent pushes).
    pub title: String,
    /// Body.
    pub body: String,
    /// Custom data.
    pub data: async_graphql::Json<serde_json::Value>,
    /// Whether it was a silent (data-only) push.
    pub silent: bool,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
    /// When the user read it in the app.
    pub read_at: Option<DateTime<Utc>>,
}

impl From<notification::Model> for Notification {
    fn from(row: notification::Model) -> Self {
        Self {
            id: ids::encode(NodeType::Notification, row.id),
            category: Category::parse(&row.category).unwrap_or(Category::System),
            priority: Priority::parse(&row.priority).unwrap_or(Priority::High),
            title: row.title,
            body: row.body,
            data: async_graphql::Json(row.data),
            silent: row.silent,
            created_at: row.created_at,
            read_at: row.read_at,
        }
    }
}

/// One page of a user's history, newest first (silent pushes are not shown).
pub async fn page(
    conn: &impl ConnectionTrait,
    user_id: i64,
    after: Option<Keyset>,
    limit: usize,
) -> Result<Page<notification::Model>, DbErr> {
    let mut query = notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::Silent.eq(false));
    if let Some(after) = after {
        query = query.filter(older_than(notification::Column::CreatedAt, notification::Column::Id, after));
    }
    let rows = query
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .limit(limit as u64 + 1)
        .all(conn)
        .await?;
    Ok(Page::from_overfetch(rows, limit))
}

/// Unread (visible) notifications of a user.
pub async fn unread(conn: &impl ConnectionTrait, user_id: i64) -> Result<u64, DbErr> {
    notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::Silent.eq(false))
        .filter(notification::Column::ReadAt.is_null())
        .count(conn)
        .await
}

/// Marks the user's notification `id` (or all when `None`) read; returns how many changed.
pub async fn mark_read(conn: &impl ConnectionTrait, user_id: i64, id: Option<i64>) -> Result<u64, DbErr> {
    let mut update = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(db::now()))
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::ReadAt.is_null());
    if let Some(id) = id {
        update = update.filter(notification::Column::Id.eq(id));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

/// History queries.
#[derive(Default)]
pub struct NotificationsQuery;

#[Object]
impl NotificationsQuery {
    /// The viewer's notifications, newest first.
    #[graphql(complexity = "connection_complexity(child_complexity, first)", cache_control(private))]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Notification>> {
        let user = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        let args =
            PageArgs::parse(ListKind::Notifications, first, after.as_deref(), app.settings.limits.max_page_size)?;
        let page = page(app.db.conn(), user, args.after, args.first).await.map_err(db_error)?;
        Ok(connection(
            ListKind::Notifications,
            page,
            args.after.is_some(),
            |n| Keyset { created_at: n.created_at, id: n.id },
            |n| Some(Notification::from(n)),
        ))
    }

    /// Unread notifications: the app icon's badge.
    #[graphql(cache_control(private))]
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let user = viewer(ctx).require().api()?;
        let count = unread(app(ctx)?.db.conn(), user).await.map_err(db_error)?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}

/// History mutations.
#[derive(Default)]
pub struct NotificationsMutation;

async fn mark(ctx: &Context<'_>, operation: &str, id: Option<i64>, key: Option<String>) -> async_graphql::Result<i32> {
    let user = viewer(ctx).require().api()?;
    let app = app(ctx)?;
    let key = key.as_deref().map(validate::idempotency_key).transpose().api()?;
    let changed =
        match idempotency::begin::<u64>(&app.db, &app.settings.idempotency, user, key.as_deref(), operation, &id)
            .await
            .api()?
        {
            Attempt::Replay(changed) => changed,
            Attempt::First(tx) => {
                let changed = mark_read(&**tx.tx(), user, id).await.map_err(db_error)?;
                tx.finish(&changed).await.api()?;
                changed
            }
        };
    let _ = changed;
    let remaining = unread(app.db.conn(), user).await.map_err(db_error)?;
    Ok(i32::try_from(remaining).unwrap_or(i32::MAX))
}

#[Object]
impl NotificationsMutation {
    /// Marks one notification read; returns the unread count left.
    async fn mark_notification_read(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<i32> {
        let id = ids::decode_as(&id, NodeType::Notification)?;
        mark(ctx, "markNotificationRead", Some(id), idempotency_key).await
    }

    /// Marks every notification read; returns the unread count left (0).
    async fn mark_all_notifications_read(
        &self,
        ctx: &Context<'_>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<i32> {
        mark(ctx, "markAllNotificationsRead", None, idempotency_key).await
    }
}
