//! Reads and writes of the stored versions and the maintenance switch.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sea_query::OnConflict};

use super::entities::{app_version_policy, maintenance_window};

/// The id of the one maintenance row.
const MAINTENANCE_ROW: i32 = 1;

/// Every stored platform row and the maintenance row.
pub async fn load(
    conn: &impl ConnectionTrait,
) -> Result<(Vec<app_version_policy::Model>, Option<maintenance_window::Model>), sea_orm::DbErr> {
    let platforms = app_version_policy::Entity::find().all(conn).await?;
    let maintenance = maintenance_window::Entity::find_by_id(MAINTENANCE_ROW).one(conn).await?;
    Ok((platforms, maintenance))
}

/// Stores one platform's versions (replacing its row).
pub async fn upsert_platform(
    conn: &impl ConnectionTrait,
    row: app_version_policy::Model,
) -> Result<(), sea_orm::DbErr> {
    use app_version_policy::Column;
    app_version_policy::Entity::insert(app_version_policy::ActiveModel {
        platform: Set(row.platform),
        minimum_version: Set(row.minimum_version),
        recommended_version: Set(row.recommended_version),
        store_url: Set(row.store_url),
        updated_at: Set(row.updated_at),
    })
    .on_conflict(
        OnConflict::column(Column::Platform)
            .update_columns([Column::MinimumVersion, Column::RecommendedVersion, Column::StoreUrl, Column::UpdatedAt])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

/// Turns maintenance on (with `message` and an optional end) or off.
pub async fn set_maintenance(
    conn: &impl ConnectionTrait,
    enabled: bool,
    message: String,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), sea_orm::DbErr> {
    use maintenance_window::Column;
    maintenance_window::Entity::insert(maintenance_window::ActiveModel {
        id: Set(MAINTENANCE_ROW),
        enabled: Set(enabled),
        message: Set(message),
        until: Set(until),
        updated_at: Set(crate::kernel::db::now()),
    })
    .on_conflict(
        OnConflict::column(Column::Id)
            .update_columns([Column::Enabled, Column::Message, Column::Until, Column::UpdatedAt])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}
