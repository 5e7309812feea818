//! Biometric login by challenge-response with a device-bound key.
//!
//! The app creates a P-256 key in the Secure Enclave / Android Keystore that only a biometric
//! unlock can use, and enrolls its public key (SPKI DER, base64) for the signed-in device.
//! Later, signed out, it asks for a challenge (a 32-byte nonce, single use, valid
//! `auth.biometric_challenge_seconds`), signs the nonce after the biometric prompt, and
//! exchanges the signature (ECDSA P-256 with SHA-256, DER or raw `r‖s`, base64) for a token
//! pair. Revoking the device deletes its key.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Duration;
use p256::{
    ecdsa::{Signature, VerifyingKey, signature::Verifier},
    pkcs8::DecodePublicKey,
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, sea_query::OnConflict};

use crate::auth::{TokenPair, sessions};
use crate::{
    auth::{
        entities::{biometric_challenge, device, device_key},
        keys::{SigningKeys, b64url},
    },
    config::AuthSettings,
    kernel::{
        db::{self, Db},
        error::DomainError,
    },
};

/// A challenge to sign.
#[derive(Clone, Debug)]
pub struct Challenge {
    /// Id to send back with the signature.
    pub id: String,
    /// The bytes to sign, base64url.
    pub nonce: String,
    /// When it stops being accepted.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

fn parse_key(spki_base64: &str) -> Result<VerifyingKey, DomainError> {
    let der =
        STANDARD.decode(spki_base64.trim()).map_err(|_| DomainError::invalid("publicKey must be base64 SPKI DER"))?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| DomainError::invalid("publicKey is not a P-256 public key"))
}

/// Enrolls (or replaces) the biometric key of the viewer's current device.
pub async fn enroll(db: &Db, user_id: i64, device_id: i64, public_key: &str) -> Result<(), DomainError> {
    if public_key.len() > 1024 {
        return Err(DomainError::invalid("publicKey is too long"));
    }
    parse_key(public_key)?;
    let owned = device::Entity::find_by_id(device_id)
        .one(db.conn())
        .await?
        .is_some_and(|d| d.user_id == user_id && d.revoked_at.is_none());
    if !owned {
        return Err(DomainError::NotFound("device"));
    }
    let row = device_key::ActiveModel {
        device_id: Set(device_id),
        public_key: Set(public_key.trim().to_owned()),
        created_at: Set(db::now()),
    };
    device_key::Entity::insert(row)
        .on_conflict(
            OnConflict::column(device_key::Column::DeviceId)
                .update_columns([device_key::Column::PublicKey, device_key::Column::CreatedAt])
                .to_owned(),
        )
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

/// Issues a challenge for a device with an enrolled key. Unknown devices get a challenge too
/// (that can never verify), so the answer does not reveal which devices exist.
pub async fn challenge(db: &Db, settings: &AuthSettings, device_id: i64) -> Result<Challenge, DomainError> {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|_| DomainError::Database(sea_orm::DbErr::Custom("random source".into())))?;
    let id = uuid::Uuid::new_v4().to_string();
    let expires_at = db::now() + Duration::seconds(i64::try_from(settings.biometric_challenge_seconds).unwrap_or(60));
    biometric_challenge::ActiveModel {
        id: Set(id.clone()),
        device_id: Set(device_id),
        nonce: Set(b64url(&nonce)),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db.conn())
    .await?;
    Ok(Challenge { id, nonce: b64url(&nonce), expires_at })
}

/// Verifies the signature over the challenge's nonce and signs the device in. Any failure —
/// unknown, used or expired challenge, another device's challenge, no key, bad signature, a
/// signed-out account — is `Unauthenticated`.
pub async fn login(
    db: &Db,
    keys: &SigningKeys,
    settings: &AuthSettings,
    device_id: i64,
    challenge_id: &str,
    signature: &str,
) -> Result<TokenPair, DomainError> {
    let tx = db.begin_write().await?;
    let Some(challenge) = biometric_challenge::Entity::find_by_id(challenge_id.to_owned()).one(&*tx).await? else {
        return Err(DomainError::Unauthenticated);
    };
    // Spend it first: a challenge is single use even when the signature is wrong.
    let now = db::now();
    let fresh = challenge.used_at.is_none() && now <= challenge.expires_at && challenge.device_id == device_id;
    let nonce = challenge.nonce.clone();
    let mut spent: biometric_challenge::ActiveModel = challenge.into();
    spent.used_at = Set(Some(now));
    spent.update(&*tx).await?;
    tx.commit().await?;
    if !fresh {
        return Err(DomainError::Unauthenticated);
    }
    let Some(key) = device_key::Entity::find_by_id(device_id).one(db.conn()).await? else {
        return Err(DomainError::Unauthenticated);
    };
    let Some(device) = device::Entity::find_by_id(device_id).one(db.conn()).await? else {
        return Err(DomainError::Unauthenticated);
    };
    let verifying = parse_key(&key.public_key).map_err(|_| DomainError::Unauthenticated)?;
    let raw_signature = STANDARD.decode(signature.trim()).map_err(|_| DomainError::Unauthenticated)?;
    let parsed = Signature::from_der(&raw_signature)
        .or_else(|_| Signature::from_slice(&raw_signature))
        .map_err(|_| DomainError::Unauthenticated)?;
    let nonce_bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&nonce).map_err(|_| DomainError::Unauthenticated)?;
    verifying.verify(&nonce_bytes, &parsed).map_err(|_| DomainError::Unauthenticated)?;
    let tx = db.begin_write().await?;
    let mut active: device::ActiveModel = device.clone().into();
    active.revoked_at = Set(None);
    active.last_seen_at = Set(now);
    active.update(&*tx).await?;
    let pair = sessions::start(&*tx, keys, settings, device.user_id, device.id).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Deletes a device's biometric key (when the device is revoked).
pub async fn forget(conn: &impl sea_orm::ConnectionTrait, device_id: i64) -> Result<(), DomainError> {
    device_key::Entity::delete_by_id(device_id).exec(conn).await?;
    Ok(())
}
