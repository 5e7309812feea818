//! Registration and password login.
//!
//! Login answers the same way, after the same work, whether the email is unknown or the
//! password wrong: an unknown email is checked against a dummy hash with the same argon2id
//! parameters. Hashing runs on the blocking pool so it never stalls the async workers.

use std::sync::OnceLock;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::auth::{
    DeviceInfo, TokenPair, devices,
    events::{self, EventKind},
    password, sessions,
};
use crate::{
    auth::{entities::credential, keys::SigningKeys},
    config::AuthSettings,
    kernel::{
        db::{self, Db},
        error::DomainError,
        validate,
    },
    social::user_entity as user,
};

/// A new account.
#[derive(Clone, Debug)]
pub struct Registration {
    /// Email (login name).
    pub email: String,
    /// Password, 10 to 256 characters.
    pub password: String,
    /// Public handle, 3 to 30 of `[a-z0-9_]`.
    pub handle: String,
    /// Display name.
    pub display_name: String,
    /// The device registering.
    pub device: DeviceInfo,
}

/// Lower-cases and checks an email address.
pub fn normalize_email(email: &str) -> Result<String, DomainError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err(DomainError::invalid("email is not a valid address")) }
}

fn check_password(password: &str) -> Result<(), DomainError> {
    let n = password.chars().count();
    if (10..=256).contains(&n) { Ok(()) } else { Err(DomainError::invalid("password must be 10 to 256 characters")) }
}

fn normalize_handle(handle: &str) -> Result<String, DomainError> {
    let handle = handle.trim().trim_start_matches('@').to_ascii_lowercase();
    let valid = (3..=30).contains(&handle.len()) && handle.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid { Ok(handle) } else { Err(DomainError::invalid("handle must be 3 to 30 of a-z, 0-9 and _")) }
}

async fn hash_blocking(password: String, settings: AuthSettings) -> Result<String, DomainError> {
    tokio::task::spawn_blocking(move || password::hash(&password, &settings))
        .await
        .map_err(|e| DomainError::Database(sea_orm::DbErr::Custom(format!("hashing task: {e}"))))?
        .map_err(|e| DomainError::Database(sea_orm::DbErr::Custom(e.to_string())))
}

/// Creates an account and signs the registering device in.
pub async fn register(
    db: &Db,
    keys: &SigningKeys,
    settings: &AuthSettings,
    new: Registration,
) -> Result<TokenPair, DomainError> {
    let email = normalize_email(&new.email)?;
    check_password(&new.password)?;
    let handle = normalize_handle(&new.handle)?;
    let display_name = validate::text("displayName", &new.display_name, 80)?;
    let device = new.device.validated()?;
    let password_hash = hash_blocking(new.password, settings.clone()).await?;
    let tx = db.begin_write().await?;
    if credential::Entity::find().filter(credential::Column::Email.eq(email.as_str())).one(&*tx).await?.is_some() {
        return Err(DomainError::Conflict("an account with this email already exists"));
    }
    if user::Entity::find().filter(user::Column::Handle.eq(handle.as_str())).one(&*tx).await?.is_some() {
        return Err(DomainError::Conflict("this handle is taken"));
    }
    let now = db::now();
    let user = user::ActiveModel {
        handle: Set(handle),
        display_name: Set(display_name),
        bio: Set(String::new()),
        avatar_key: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&*tx)
    .await?;
    credential::ActiveModel {
        user_id: Set(user.id),
        email: Set(email),
        password_hash: Set(password_hash),
        created_at: Set(now),
    }
    .insert(&*tx)
    .await?;
    let device = devices::upsert(&*tx, user.id, &device).await?;
    let pair = sessions::start(&*tx, keys, settings, user.id, device.id).await?;
    tx.commit().await?;
    Ok(pair)
}

fn dummy_hash(settings: &AuthSettings) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash("not the password of anyone", settings).unwrap_or_default())
}

/// Signs a device in with email and password. Any failure is `Unauthenticated`, with no hint
/// of whether the email exists.
pub async fn login(
    db: &Db,
    keys: &SigningKeys,
    settings: &AuthSettings,
    email: &str,
    password: String,
    device: DeviceInfo,
) -> Result<TokenPair, DomainError> {
    let device = device.validated()?;
    let email = normalize_email(email).unwrap_or_default();
    let account = if email.is_empty() {
        None
    } else {
        credential::Entity::find().filter(credential::Column::Email.eq(email.as_str())).one(db.conn()).await?
    };
    let stored = account.as_ref().map(|a| a.password_hash.clone()).unwrap_or_else(|| dummy_hash(settings).to_owned());
    let matches = tokio::task::spawn_blocking(move || password::verify(&password, &stored))
        .await
        .map_err(|e| DomainError::Database(sea_orm::DbErr::Custom(format!("hashing task: {e}"))))?;
    let account = match account {
        Some(account) if matches => account,
        Some(account) => {
            // Recorded in the background: the answer must take as long as for an unknown email.
            let db = db.clone();
            tokio::spawn(async move {
                if let Err(err) =
                    events::record(db.conn(), account.user_id, None, EventKind::LoginFailed, json!({})).await
                {
                    tracing::warn!(error = %err, "could not record a failed login");
                }
            });
            return Err(DomainError::Unauthenticated);
        }
        None => return Err(DomainError::Unauthenticated),
    };
    let tx = db.begin_write().await?;
    let device = devices::upsert(&*tx, account.user_id, &device).await?;
    let pair = sessions::start(&*tx, keys, settings, account.user_id, device.id).await?;
    tx.commit().await?;
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rules() {
        assert_eq!(normalize_email(" Alice@Example.COM ").expect("ok"), "alice@example.com");
        assert!(normalize_email("no-at-sign").is_err());
        assert!(normalize_email("a@b").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough password").is_ok());
        assert_eq!(normalize_handle("@Alice_1").expect("ok"), "alice_1");
        assert!(normalize_handle("a b").is_err());
    }
}
