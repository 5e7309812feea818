//! OAuth2 authorization code with PKCE for registered public clients (mobile apps).
//!
//! Only `response_type=code` with `code_challenge_method=S256` is accepted (`plain` and the
//! implicit grant are refused). Redirect URIs must match a registered one exactly. Codes are
//! 256 random bits, stored as hashes, single use and valid 60 s; replaying a code revokes the
//! session it was exchanged for. The token endpoint issues the same access/refresh pairs as
//! `login`, bound to a device session created for the authorization.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Duration;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use sha2::{Digest, Sha256};

use crate::auth::{DeviceInfo, TokenPair, devices, password, sessions};
use crate::{
    auth::{
        entities::{credential, oauth_code},
        keys::{SigningKeys, b64url},
    },
    config::{AuthSettings, OAuthClient},
    kernel::{
        db::{self, Db},
        error::DomainError,
    },
};

/// The client device id to present for an OAuth `refresh_token` grant: the session's device
/// when `raw` belongs to a session this OAuth client opened (the code exchange recorded
/// which device), else `None` (another client's or a native sign-in's token is refused).
pub async fn refresh_device(
    conn: &impl sea_orm::ConnectionTrait,
    raw: &str,
    client_id: &str,
) -> Result<Option<String>, DomainError> {
    use sea_orm::{ColumnTrait, QueryFilter};

    use crate::auth::entities::{device, refresh_token};
    let Some(row) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(sessions::token_hash(raw)))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let opened = oauth_code::Entity::find()
        .filter(oauth_code::Column::DeviceId.eq(row.device_id))
        .filter(oauth_code::Column::ClientId.eq(client_id))
        .one(conn)
        .await?;
    if client_id.is_empty() || opened.is_none() {
        return Ok(None);
    }
    Ok(device::Entity::find_by_id(row.device_id).one(conn).await?.map(|d| d.client_device_id))
}

/// An OAuth error with its RFC 6749 code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `unauthorized_client`, `unsupported_response_type`, `invalid_grant`, ...
    pub error: &'static str,
    /// Human-readable description.
    pub description: &'static str,
}

impl OAuthError {
    const fn new(error: &'static str, description: &'static str) -> Self {
        Self { error, description }
    }
}

/// A validated authorization request.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// Where to send the code.
    pub redirect_uri: String,
    /// The S256 challenge.
    pub code_challenge: String,
    /// Opaque client state, passed through.
    pub state: Option<String>,
}

/// Finds the client and checks the redirect URI; errors here must not redirect.
pub fn check_client<'a>(
    clients: &'a [OAuthClient],
    client_id: &str,
    redirect_uri: &str,
) -> Result<&'a OAuthClient, OAuthError> {
    let client = clients
        .iter()
        .find(|c| c.client_id == client_id)
        .ok_or(OAuthError::new("unauthorized_client", "unknown client_id"))?;
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(OAuthError::new("invalid_request", "redirect_uri is not registered for this client"));
    }
    Ok(client)
}

/// Checks the parameters that may be reported by redirecting back.
pub fn check_request(
    response_type: Option<&str>,
    code_challenge: Option<&str>,
    method: Option<&str>,
) -> Result<String, OAuthError> {
    match response_type {
        Some("code") => {}
        Some("token") => {
            return Err(OAuthError::new("unsupported_response_type", "the implicit grant is not supported"));
        }
        _ => return Err(OAuthError::new("unsupported_response_type", "response_type must be code")),
    }
    if method != Some("S256") {
        return Err(OAuthError::new("invalid_request", "code_challenge_method must be S256"));
    }
    let challenge = code_challenge.unwrap_or_default();
    // A base64url SHA-256: 43 characters.
    if challenge.len() != 43 || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(OAuthError::new("invalid_request", "code_challenge must be a base64url SHA-256"));
    }
    Ok(challenge.to_owned())
}

fn code_hash(code: &str) -> String {
    crate::kernel::idempotency::hex(&Sha256::digest(code.as_bytes()))
}

/// Authenticates the user with email and password and issues a code for the request.
pub async fn authorize(
    db: &Db,
    request: &AuthorizationRequest,
    email: &str,
    password_input: String,
) -> Result<String, DomainError> {
    let email = super::accounts::normalize_email(email).unwrap_or_default();
    let account = if email.is_empty() {
        None
    } else {
        use sea_orm::{ColumnTrait, QueryFilter};
        credential::Entity::find().filter(credential::Column::Email.eq(email.as_str())).one(db.conn()).await?
    };
    let stored = account.as_ref().map(|a| a.password_hash.clone()).unwrap_or_default();
    let matches = tokio::task::spawn_blocking(move || password::verify(&password_input, &stored))
        .await
        .map_err(|e| DomainError::Database(sea_orm::DbErr::Custom(format!("hashing task: {e}"))))?;
    let Some(account) = account.filter(|_| matches) else {
        return Err(DomainError::Unauthenticated);
    };
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|_| DomainError::Database(sea_orm::DbErr::Custom("random source".into())))?;
    let code = b64url(&raw);
    oauth_code::ActiveModel {
        code_hash: Set(code_hash(&code)),
        client_id: Set(request.client_id.clone()),
        redirect_uri: Set(request.redirect_uri.clone()),
        user_id: Set(account.user_id),
        code_challenge: Set(request.code_challenge.clone()),
        expires_at: Set(db::now() + Duration::seconds(60)),
        used_at: Set(None),
        device_id: Set(None),
    }
    .insert(db.conn())
    .await?;
    Ok(code)
}

/// Exchanges a code (with its PKCE verifier) for a token pair.
pub async fn exchange(
    db: &Db,
    keys: &SigningKeys,
    settings: &AuthSettings,
    client_id: &str,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Result<Result<TokenPair, OAuthError>, DomainError> {
    let invalid = Ok(Err(OAuthError::new("invalid_grant", "the code is invalid, expired, used or does not match")));
    if !(43..=128).contains(&verifier.len()) {
        return Ok(Err(OAuthError::new("invalid_request", "code_verifier must be 43 to 128 characters")));
    }
    let tx = db.begin_write().await?;
    let Some(row) = oauth_code::Entity::find_by_id(code_hash(code)).one(&*tx).await? else {
        return invalid;
    };
    let now = db::now();
    if let Some(device) = row.device_id.filter(|_| row.used_at.is_some()) {
        // A replayed code: the session it opened is compromised.
        devices::revoke(&*tx, row.user_id, device, true).await?;
        tx.commit().await?;
        return invalid;
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let valid = row.used_at.is_none()
        && now <= row.expires_at
        && row.client_id == client_id
        && row.redirect_uri == redirect_uri
        && super::password::constant_time_eq(challenge.as_bytes(), row.code_challenge.as_bytes());
    if !valid {
        let mut spent: oauth_code::ActiveModel = row.into();
        spent.used_at = Set(Some(now));
        spent.update(&*tx).await?;
        tx.commit().await?;
        return invalid;
    }
    let device = DeviceInfo {
        client_device_id: uuid::Uuid::new_v4().to_string(),
        platform: crate::kernel::request::Platform::Web,
        model: format!("OAuth client {client_id}").chars().take(100).collect(),
        ..DeviceInfo::default()
    };
    let device = devices::upsert(&*tx, row.user_id, &device).await?;
    let pair = sessions::start(&*tx, keys, settings, row.user_id, device.id).await?;
    let mut spent: oauth_code::ActiveModel = row.into();
    spent.used_at = Set(Some(now));
    spent.device_id = Set(Some(device.id));
    spent.update(&*tx).await?;
    tx.commit().await?;
    Ok(Ok(pair))
}
