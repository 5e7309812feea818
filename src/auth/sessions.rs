//! Refresh-token families: start a session, rotate on every refresh, detect reuse.
//!
//! The first refresh token of a family is 256 random bits; each next one is derived from the
//! previous with the family's own successor key (256 random bits drawn when the family starts,
//! stored with its rows: HMAC-SHA256, [`successor_token`]). The derivation does not depend on
//! the signing key, so after a key rotation, or on replicas configured with different keys,
//! every replica derives the same successor. Rows from before per-family keys fall back to
//! the signing key's derivation ([`SigningKeys::next_refresh_token`]). Only SHA-256 hashes of
//! tokens are stored; the key alone derives nothing (it needs a raw token, which is never
//! stored). Rotation marks the presented token used and stores its successor:
//!
//! - the presenting device must be the token's device (`clientDeviceId`, always checked: a
//!   stolen token presented without it is refused);
//! - presenting a used token within `auth.refresh_grace_seconds` of its use, from the same
//!   device, returns the same successor (two refreshes fired at once by the app both succeed);
//! - presenting it later is reuse: the whole family (the device's session) is revoked and a
//!   `refresh_token_reuse` security event recorded.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::Expr,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::signals::{self, Contradiction, SignalPolicy, Signals};
use crate::auth::{
    TokenPair,
    events::{self, EventKind},
};
use crate::{
    auth::{
        entities::{device, refresh_token},
        keys::{SigningKeys, b64url, successor_token},
    },
    config::AuthSettings,
    kernel::{
        db::{self, Db},
        error::DomainError,
        idempotency::hex,
    },
};

/// SHA-256 (hex) of a refresh token, as stored.
pub fn token_hash(raw: &str) -> String {
    hex(&Sha256::digest(raw.as_bytes()))
}

fn days(n: u64) -> Duration {
    Duration::days(i64::try_from(n).unwrap_or(365))
}

fn access(keys: &SigningKeys, user_id: i64, device_id: i64) -> Result<(String, DateTime<Utc>), DomainError> {
    let ttl = keys.ttl_seconds();
    let token = keys
        .mint_for_device(user_id, Some(device_id), None)
        .map_err(|e| DomainError::Database(sea_orm::DbErr::Custom(format!("token signing: {e}"))))?;
    Ok((token, Utc::now() + Duration::seconds(i64::try_from(ttl).unwrap_or(900))))
}

/// Starts a new family for `device_id` and returns its first pair.
pub async fn start(
    conn: &impl sea_orm::ConnectionTrait,
    keys: &SigningKeys,
    settings: &AuthSettings,
    user_id: i64,
    device_id: i64,
) -> Result<TokenPair, DomainError> {
    let raw = b64url(&random_bytes()?);
    let successor_key = hex(&random_bytes()?);
    let now = db::now();
    let family_expires_at = now + days(settings.refresh_absolute_days);
    let expires_at = (now + days(settings.refresh_sliding_days)).min(family_expires_at);
    refresh_token::ActiveModel {
        family_id: Set(uuid::Uuid::new_v4().to_string()),
        user_id: Set(user_id),
        device_id: Set(device_id),
        token_hash: Set(token_hash(&raw)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        family_expires_at: Set(family_expires_at),
        used_at: Set(None),
        replaced_by: Set(None),
        revoked_at: Set(None),
        successor_key: Set(Some(successor_key)),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    let (access_token, access_expires_at) = access(keys, user_id, device_id)?;
    Ok(TokenPair {
        access_token,
        access_expires_at,
        refresh_token: raw,
        refresh_expires_at: expires_at,
        user_id,
        device_id,
    })
}

fn random_bytes() -> Result<[u8; 32], DomainError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| DomainError::Database(sea_orm::DbErr::Custom("random source".into())))?;
    Ok(bytes)
}

/// The successor of `raw` in `row`'s family.
fn successor_of(keys: &SigningKeys, row: &refresh_token::Model, raw: &str) -> String {
    match &row.successor_key {
        Some(key) => successor_token(key.as_bytes(), raw),
        None => keys.next_refresh_token(raw),
    }
}

/// Pairs issued by recent rotations, kept for the grace window so a concurrent refresh on this
/// replica gets the very same pair (access token included); on another replica it gets the
/// same refresh token (derived with the family's key) and an equivalent fresh access token.
pub struct RecentPairs(moka::sync::Cache<String, TokenPair>);

impl RecentPairs {
    /// Remembers pairs for `grace_seconds`.
    pub fn new(grace_seconds: u64) -> Self {
        let ttl = std::time::Duration::from_secs(grace_seconds.max(1));
        Self(moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ttl).build())
    }
}

impl std::fmt::Debug for RecentPairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecentPairs")
    }
}

/// Why a refresh was refused (clients only see `UNAUTHENTICATED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, expired or revoked token, or a revoked device.
    Invalid,
    /// The token belongs to another device than the one presenting it.
    WrongDevice,
    /// A used token outside the grace window: the family was revoked.
    Reused,
    /// The device's signals contradict its record under `auth.device_signals = "step_up"`:
    /// the device was signed out; the user signs in again.
    StepUp {
        /// The device signed out.
        device_id: i64,
    },
}

/// Device signals of a refresh that contradict the device's record (already recorded as a
/// security event; the caller tells the user).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradicted {
    /// The user.
    pub user_id: i64,
    /// The device.
    pub device_id: i64,
    /// What disagreed.
    pub contradictions: Vec<Contradiction>,
}

/// A refresh's outcome, and the contradicting device signals it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refreshed {
    /// New tokens, or why not.
    pub outcome: Result<TokenPair, Refusal>,
    /// Signals that contradicted the record, if any.
    pub contradicted: Option<Contradicted>,
}

/// Rotates `raw`, presented by the device whose client device id is `client_device_id` with
/// `signals` (its headers), checked against the device's record.
pub async fn refresh(
    db: &Db,
    keys: &SigningKeys,
    settings: &AuthSettings,
    recent: &RecentPairs,
    raw: &str,
    client_device_id: &str,
    signals: &Signals,
) -> Result<Refreshed, DomainError> {
    let mut contradicted = None;
    let outcome = rotate(db, keys, settings, recent, raw, client_device_id, signals, &mut contradicted).await?;
    Ok(Refreshed { outcome, contradicted })
}

#[allow(clippy::too_many_arguments)]
async fn rotate(
    db: &Db,
    keys: &SigningKeys,
    settings: &AuthSettings,
    recent: &RecentPairs,
    raw: &str,
    client_device_id: &str,
    signals: &Signals,
    contradicted: &mut Option<Contradicted>,
) -> Result<Result<TokenPair, Refusal>, DomainError> {
    if raw.is_empty() || raw.len() > 128 {
        return Ok(Err(Refusal::Invalid));
    }
    let tx = db.begin_write().await?;
    let mut query = refresh_token::Entity::find().filter(refresh_token::Column::TokenHash.eq(token_hash(raw)));
    if tx.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // Concurrent refreshes of one token queue here (SQLite already has one writer at a time),
        // so the second sees the first's rotation and takes the grace path.
        query = query.lock_exclusive();
    }
    let Some(row) = query.one(&*tx).await? else {
        return Ok(Err(Refusal::Invalid));
    };
    let Some(device) = device::Entity::find_by_id(row.device_id).one(&*tx).await? else {
        return Ok(Err(Refusal::Invalid));
    };
    let now = db::now();
    if row.revoked_at.is_some() || device.revoked_at.is_some() || now > row.expires_at || now > row.family_expires_at {
        return Ok(Err(Refusal::Invalid));
    }
    if !client_device_id.trim().eq_ignore_ascii_case(&device.client_device_id) {
        return Ok(Err(Refusal::WrongDevice));
    }
    let contradictions = signals::contradictions(&device, signals);
    if !contradictions.is_empty() {
        let detail = json!({ "contradictions": contradictions, "on": "refresh" });
        events::record(&*tx, row.user_id, Some(row.device_id), EventKind::DeviceSignalsContradict, detail).await?;
        let strong = contradictions.iter().any(Contradiction::is_strong);
        *contradicted = Some(Contradicted { user_id: row.user_id, device_id: row.device_id, contradictions });
        if strong && settings.device_signals == SignalPolicy::StepUp {
            super::devices::revoke(&*tx, row.user_id, row.device_id, false).await?;
            tx.commit().await?;
            return Ok(Err(Refusal::StepUp { device_id: row.device_id }));
        }
    }
    let successor = successor_of(keys, &row, raw);
    if let Some(used_at) = row.used_at {
        let within_grace =
            now - used_at <= Duration::seconds(i64::try_from(settings.refresh_grace_seconds).unwrap_or(10));
        let next = match row.replaced_by {
            Some(id) => refresh_token::Entity::find_by_id(id).one(&*tx).await?,
            None => None,
        };
        if let Some(next) =
            next.filter(|n| within_grace && n.revoked_at.is_none() && n.token_hash == token_hash(&successor))
        {
            tx.commit().await?;
            if let Some(pair) = recent.0.get(&token_hash(raw)) {
                return Ok(Ok(pair));
            }
            let (access_token, access_expires_at) = access(keys, row.user_id, row.device_id)?;
            return Ok(Ok(TokenPair {
                access_token,
                access_expires_at,
                refresh_token: successor,
                refresh_expires_at: next.expires_at,
                user_id: row.user_id,
                device_id: row.device_id,
            }));
        }
        // Reuse: revoke the family and say so.
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
            .filter(refresh_token::Column::FamilyId.eq(row.family_id.as_str()))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&*tx)
            .await?;
        let detail = json!({ "family": row.family_id, "usedAt": used_at });
        events::record(&*tx, row.user_id, Some(row.device_id), EventKind::RefreshTokenReuse, detail).await?;
        tx.commit().await?;
        return Ok(Err(Refusal::Reused));
    }
    let expires_at = (now + days(settings.refresh_sliding_days)).min(row.family_expires_at);
    let next = refresh_token::ActiveModel {
        family_id: Set(row.family_id.clone()),
        user_id: Set(row.user_id),
        device_id: Set(row.device_id),
        token_hash: Set(token_hash(&successor)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        family_expires_at: Set(row.family_expires_at),
        used_at: Set(None),
        replaced_by: Set(None),
        revoked_at: Set(None),
        successor_key: Set(row.successor_key.clone()),
        ..Default::default()
    }
    .insert(&*tx)
    .await?;
    let (user_id, device_id) = (row.user_id, row.device_id);
    let mut used: refresh_token::ActiveModel = row.into();
    used.used_at = Set(Some(now));
    used.replaced_by = Set(Some(next.id));
    used.update(&*tx).await?;
    let upgraded_os = signals.os_version.clone().filter(|os| signals::os_upgraded(os, &device.os_version));
    let mut seen: device::ActiveModel = device.into();
    seen.last_seen_at = Set(now);
    if let Some(os) = upgraded_os {
        // The record follows the device forward, so a later step back stands out.
        seen.os_version = Set(os);
    }
    seen.update(&*tx).await?;
    tx.commit().await?;
    let (access_token, access_expires_at) = access(keys, user_id, device_id)?;
    let pair = TokenPair {
        access_token,
        access_expires_at,
        refresh_token: successor,
        refresh_expires_at: expires_at,
        user_id,
        device_id,
    };
    recent.0.insert(token_hash(raw), pair.clone());
    Ok(Ok(pair))
}
