//! Accounts and sessions in the schema: `register`, `login`, `refreshTokens`, `logout`,
//! `devices`, `revokeDevice`, `signOutEverywhere` and `securityEvents`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, connection::Connection};
use chrono::{DateTime, Utc};

use crate::app::app;
use crate::auth::entities::device;
use crate::auth::signals::Signals;
use crate::kernel::{hooks::FieldBudget, request::Platform};
use crate::social::loaders;
use crate::{
    auth::{
        DeviceInfo, TokenPair, accounts, biometric, devices, events,
        sessions::{self, Refusal},
    },
    kernel::{
        db::keyset::Keyset,
        error::DomainError,
        infra::{
            pins::{Pin, PinRole},
            rate_limit::Limit,
        },
    },
};
use crate::{
    kernel::graphql::{
        context::viewer,
        error::{DomainResultExt, ErrorCode, api_error, db_error, loader_error, rate_limited},
        ids::{self, NodeType},
        pagination::{ListKind, PageArgs, connection, connection_complexity},
    },
    social::User,
};
use async_graphql::ErrorExtensions as _;

/// Signs devices out (one transaction, in the use case) and cuts them off on this replica.
async fn sign_out(app: &crate::app::App, user: i64, which: devices::SignOut) -> async_graphql::Result<Vec<i64>> {
    let realtime = &app.settings.realtime;
    let channel = realtime.pg_notify.then_some(realtime.pg_notify_channel.as_str());
    let signed_out = devices::sign_out(&app.db, channel, user, which).await.api()?;
    for device in &signed_out {
        app.gate.revoked(*device);
    }
    Ok(signed_out)
}

/// Mutation root fields with their own rate-limit budget: sign-in attempts per client IP,
/// refreshes per device.
pub const FIELD_BUDGETS: &[FieldBudget] = &[
    FieldBudget { field: "login", limit: Limit::LoginPerIp },
    FieldBudget { field: "register", limit: Limit::LoginPerIp },
    FieldBudget { field: "refreshTokens", limit: Limit::RefreshPerDevice },
];

/// A signed-in device.
#[derive(SimpleObject)]
pub struct Device {
    /// Opaque id.
    pub id: ID,
    /// Platform.
    pub platform: Platform,
    /// Model identifier.
    pub model: String,
    /// OS version.
    pub os_version: String,
    /// App version last seen.
    pub app_version: String,
    /// A name to show in a "your devices" list (`iPhone15,2 · iOS 18.1`).
    pub name: String,
    /// Whether this is the device making the request.
    pub is_current: bool,
    /// Whether the device is signed out.
    pub revoked: bool,
    /// First sign-in.
    pub created_at: DateTime<Utc>,
    /// Last sign-in or token refresh.
    pub last_seen_at: DateTime<Utc>,
    /// The device's push registration (null without a token): a token the provider reported
    /// dead shows `deliverable: false`.
    pub push: Option<crate::push::PushRegistration>,
}

fn device_name(row: &device::Model) -> String {
    let os = match row.platform.as_str() {
        "ios" => "iOS",
        "android" => "Android",
        _ => "Web",
    };
    let model = if row.model.is_empty() { "Unknown device" } else { row.model.as_str() };
    if row.os_version.is_empty() { format!("{model} · {os}") } else { format!("{model} · {os} {}", row.os_version) }
}

impl Device {
    /// The API form of a device row; `current` is the requesting device.
    pub fn from_row(row: device::Model, current: Option<i64>) -> Self {
        Self {
            push: crate::push::PushRegistration::of(&row),
            id: ids::encode(NodeType::Device, row.id),
            platform: Platform::parse(&row.platform).unwrap_or(Platform::Web),
            name: device_name(&row),
            is_current: current == Some(row.id),
            revoked: row.revoked_at.is_some(),
            model: row.model,
            os_version: row.os_version,
            app_version: row.app_version,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
        }
    }
}

/// A security-relevant event on the viewer's account.
#[derive(SimpleObject)]
pub struct SecurityEvent {
    /// What happened: `new_device_login`, `device_changed`, `device_revoked`,
    /// `refresh_token_reuse`, `login_failed`, `device_signals_contradict` (a sign-in or
    /// refresh from another platform or an older OS than the device's record).
    pub kind: String,
    /// The device concerned, if any.
    pub device_id: Option<ID>,
    /// Details (JSON).
    pub detail: async_graphql::Json<serde_json::Value>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Tokens for a device session.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuthPayload {
    /// Short-lived access token (send as `Authorization: Bearer`).
    pub access_token: String,
    /// When the access token expires; refresh a minute before.
    pub access_token_expires_at: DateTime<Utc>,
    /// Refresh token: store it in the Keychain/Keystore; it changes on every refresh.
    pub refresh_token: String,
    /// When the refresh token expires if unused.
    pub refresh_token_expires_at: DateTime<Utc>,
    #[graphql(skip)]
    pub user_id: i64,
    #[graphql(skip)]
    pub device_id: i64,
}

impl From<TokenPair> for AuthPayload {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            access_token_expires_at: pair.access_expires_at,
            refresh_token: pair.refresh_token,
            refresh_token_expires_at: pair.refresh_expires_at,
            user_id: pair.user_id,
            device_id: pair.device_id,
        }
    }
}

#[async_graphql::ComplexObject]
impl AuthPayload {
    /// The signed-in user.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let user = loaders(ctx)?.users.load_one(self.user_id).await.map_err(loader_error)?;
        Ok(user.map(User::from))
    }

    /// The device session's id.
    async fn device_id(&self) -> ID {
        ids::encode(NodeType::Device, self.device_id)
    }
}

/// Input of `register`.
#[derive(InputObject)]
pub struct RegisterInput {
    /// Email (login name).
    pub email: String,
    /// Password, 10 to 256 characters.
    pub password: String,
    /// Public handle, 3 to 30 of a-z, 0-9, _.
    pub handle: String,
    /// Display name.
    pub display_name: String,
    /// The device registering.
    pub device: DeviceInfo,
}

/// Input of `login`.
#[derive(InputObject)]
pub struct LoginInput {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// The device signing in.
    pub device: DeviceInfo,
}

/// Input of `refreshTokens`.
#[derive(InputObject)]
pub struct RefreshInput {
    /// The current refresh token.
    pub refresh_token: String,
    /// The device presenting it: the `clientDeviceId` it signed in with (else its
    /// `X-Device-Id` header). Required one way or the other: a token presented without its
    /// device, or by another device, is refused.
    pub client_device_id: Option<String>,
}

/// A biometric challenge to sign with the device key.
#[derive(SimpleObject)]
pub struct BiometricChallenge {
    /// Send back with the signature.
    pub challenge_id: String,
    /// The bytes to sign (base64url): ECDSA P-256 with SHA-256.
    pub nonce: String,
    /// When the challenge expires (60 s).
    pub expires_at: DateTime<Utc>,
}

/// Input of `biometricLogin`.
#[derive(InputObject)]
pub struct BiometricLoginInput {
    /// The device (its `deviceId` from a previous sign-in).
    pub device_id: ID,
    /// From `biometricChallenge`.
    pub challenge_id: String,
    /// Signature over the nonce bytes, DER or raw r‖s, base64.
    pub signature: String,
}

/// A certificate pin: `base64(SHA-256(SubjectPublicKeyInfo))`.
#[derive(SimpleObject)]
pub struct CertificatePin {
    /// The pin.
    pub sha256: String,
    /// `current` or `backup`.
    pub role: String,
    /// Certificate validity start (certificates only).
    pub not_before: Option<DateTime<Utc>>,
    /// Certificate validity end (certificates only).
    pub not_after: Option<DateTime<Utc>>,
    /// Planned rotation.
    pub rotate_after: Option<DateTime<Utc>>,
}

impl From<&Pin> for CertificatePin {
    fn from(pin: &Pin) -> Self {
        Self {
            sha256: pin.sha256.clone(),
            role: match pin.role {
                PinRole::Current => "current".to_owned(),
                PinRole::Backup => "backup".to_owned(),
            },
            not_before: pin.not_before,
            not_after: pin.not_after,
            rotate_after: pin.rotate_after,
        }
    }
}

/// Account and session queries.
#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in user (same as `viewer`); null without a token.
    #[graphql(cache_control(private))]
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(user_id) = viewer(ctx).user_id else {
            return Ok(None);
        };
        let user = loaders(ctx)?.users.load_one(user_id).await.map_err(loader_error)?;
        Ok(user.map(User::from))
    }

    /// Certificate pins (current and backup keys) for apps that pin; also at
    /// `/.well-known/pins.json`.
    #[graphql(cache_control(max_age = 3600))]
    async fn pins(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CertificatePin>> {
        Ok(app(ctx)?.pins.iter().map(CertificatePin::from).collect())
    }

    /// The viewer's devices, most recently seen first.
    #[graphql(cache_control(private))]
    async fn devices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Device>> {
        let viewer = viewer(ctx);
        let user = viewer.require().api()?;
        let rows = devices::list(app(ctx)?.db.conn(), user).await.api()?;
        Ok(rows.into_iter().map(|row| Device::from_row(row, viewer.device_id)).collect())
    }

    /// Security events on the viewer's account, newest first.
    #[graphql(complexity = "connection_complexity(child_complexity, first)", cache_control(private))]
    async fn security_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, SecurityEvent>> {
        let user = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        let args =
            PageArgs::parse(ListKind::SecurityEvents, first, after.as_deref(), app.settings.limits.max_page_size)?;
        let page = events::page(app.db.conn(), user, args.after, args.first).await.map_err(db_error)?;
        Ok(connection(
            ListKind::SecurityEvents,
            page,
            args.after.is_some(),
            |e| Keyset { created_at: e.created_at, id: e.id },
            |e| {
                Some(SecurityEvent {
                    kind: e.kind,
                    device_id: e.device_id.map(|d| ids::encode(NodeType::Device, d)),
                    detail: async_graphql::Json(e.detail),
                    created_at: e.created_at,
                })
            },
        ))
    }
}

/// Tells the user that a device's signals contradicted its record: a `SECURITY` push to their
/// devices (the security event is already recorded). A failed send is logged, not fatal.
async fn tell_about_signals(app: &crate::app::App, contradicted: &sessions::Contradicted) {
    let mut data = serde_json::Map::new();
    data.insert(
        "deviceId".into(),
        serde_json::Value::String(ids::encode(NodeType::Device, contradicted.device_id).to_string()),
    );
    data.insert("reason".into(), serde_json::Value::String("DEVICE_SIGNALS_CONTRADICT".into()));
    let outgoing = crate::push::Outgoing {
        user_id: contradicted.user_id,
        category: crate::push::Category::Security,
        priority: crate::push::Priority::High,
        title: "Unusual sign-in activity".into(),
        body: "A device signed in to your account reports a different platform or system than before. If it was not you, sign out that device.".into(),
        silent: false,
        data,
        collapse_key: Some(format!("device-signals-{}", contradicted.device_id)),
    };
    if let Err(err) = crate::push::enqueue(app, outgoing).await {
        tracing::warn!(error = %err, "could not send the device-signals notice");
    }
}

fn unauthenticated() -> async_graphql::Error {
    api_error(ErrorCode::Unauthenticated, "invalid credentials or session")
}

/// Account and session mutations.
#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account and signs this device in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> async_graphql::Result<AuthPayload> {
        let app = app(ctx)?;
        let registration = accounts::Registration {
            email: input.email,
            password: input.password,
            handle: input.handle,
            display_name: input.display_name,
            device: input.device,
        };
        let pair = accounts::register(&app.db, &app.keys, &app.settings.auth, registration).await.api()?;
        Ok(pair.into())
    }

    /// Signs this device in. Every failure is the same `UNAUTHENTICATED` answer.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<AuthPayload> {
        let app = app(ctx)?;
        // Slow brute force on one account, whatever IPs it comes from.
        let account = accounts::normalize_email(&input.email).unwrap_or_else(|_| input.email.trim().to_lowercase());
        app.limits.check(Limit::LoginPerAccount, &account).await.map_err(rate_limited)?;
        match accounts::login(&app.db, &app.keys, &app.settings.auth, &input.email, input.password, input.device).await
        {
            Ok(pair) => {
                app.gate.forget(pair.device_id);
                Ok(pair.into())
            }
            Err(DomainError::Unauthenticated) => Err(unauthenticated()),
            Err(err) => Err(crate::kernel::graphql::error::domain_error(err)),
        }
    }

    /// Exchanges a refresh token for a new pair (the old one stops working).
    async fn refresh_tokens(&self, ctx: &Context<'_>, input: RefreshInput) -> async_graphql::Result<AuthPayload> {
        let app = app(ctx)?;
        let client = ctx.data::<crate::kernel::request::ClientInfo>().ok();
        let header = client.and_then(|c| c.device_id).map(|d| d.to_string());
        let device = input.client_device_id.or(header).unwrap_or_default();
        let signals = Signals {
            platform: client.and_then(|c| c.platform),
            os_version: client.and_then(|c| c.os_version.clone()),
            model: None,
        };
        let refreshed = sessions::refresh(
            &app.db,
            &app.keys,
            &app.settings.auth,
            &app.recent_pairs,
            &input.refresh_token,
            &device,
            &signals,
        )
        .await
        .api()?;
        if let Some(contradicted) = &refreshed.contradicted {
            tell_about_signals(app, contradicted).await;
        }
        match refreshed.outcome {
            Ok(pair) => Ok(pair.into()),
            Err(Refusal::StepUp { device_id }) => {
                app.gate.revoked(device_id);
                Err(api_error(ErrorCode::Unauthenticated, "sign in again on this device")
                    .extend_with(|_, ext| ext.set("reason", "STEP_UP_REQUIRED")))
            }
            Err(refusal) => {
                if refusal == Refusal::Reused {
                    tracing::warn!("refresh token reuse: family revoked");
                } else {
                    tracing::info!(?refusal, "refresh refused");
                }
                Err(unauthenticated())
            }
        }
    }

    /// Signs the current device out: its refresh tokens and access tokens stop working.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = viewer(ctx);
        let user = viewer.require().api()?;
        let app = app(ctx)?;
        let Some(device) = viewer.device_id else {
            return Err(api_error(ErrorCode::BadUserInput, "this token has no device session"));
        };
        sign_out(app, user, devices::SignOut::Current(device)).await?;
        Ok(true)
    }

    /// Enrolls the current device's biometric public key (P-256 SPKI DER, base64), replacing
    /// an earlier one.
    async fn enroll_biometric_key(&self, ctx: &Context<'_>, public_key: String) -> async_graphql::Result<bool> {
        let viewer = viewer(ctx);
        let user = viewer.require().api()?;
        let Some(device) = viewer.device_id else {
            return Err(api_error(ErrorCode::BadUserInput, "this token has no device session"));
        };
        biometric::enroll(&app(ctx)?.db, user, device, &public_key).await.api()?;
        Ok(true)
    }

    /// A single-use challenge for biometric login on a device (no token needed).
    async fn biometric_challenge(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<BiometricChallenge> {
        let device = ids::decode_as(&device_id, NodeType::Device)?;
        let app = app(ctx)?;
        let challenge = biometric::challenge(&app.db, &app.settings.auth, device).await.api()?;
        Ok(BiometricChallenge { challenge_id: challenge.id, nonce: challenge.nonce, expires_at: challenge.expires_at })
    }

    /// Signs a device in with a signed biometric challenge.
    async fn biometric_login(
        &self,
        ctx: &Context<'_>,
        input: BiometricLoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let device = ids::decode_as(&input.device_id, NodeType::Device)?;
        let app = app(ctx)?;
        app.limits.check(Limit::LoginPerAccount, &format!("device:{device}")).await.map_err(rate_limited)?;
        match biometric::login(&app.db, &app.keys, &app.settings.auth, device, &input.challenge_id, &input.signature)
            .await
        {
            Ok(pair) => {
                app.gate.forget(pair.device_id);
                Ok(pair.into())
            }
            Err(DomainError::Unauthenticated) => Err(unauthenticated()),
            Err(err) => Err(crate::kernel::graphql::error::domain_error(err)),
        }
    }

    /// Signs one of the viewer's devices out (a lost or stolen phone).
    async fn revoke_device(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Device> {
        let viewer = viewer(ctx);
        let user = viewer.require().api()?;
        let device = ids::decode_as(&id, NodeType::Device)?;
        let app = app(ctx)?;
        sign_out(app, user, devices::SignOut::Device(device)).await?;
        let rows = devices::list(app.db.conn(), user).await.api()?;
        rows.into_iter()
            .find(|d| d.id == device)
            .map(|row| Device::from_row(row, viewer.device_id))
            .ok_or_else(|| api_error(ErrorCode::NotFound, "device not found"))
    }

    /// Signs every device of the viewer out, this one included; returns how many.
    async fn sign_out_everywhere(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let user = viewer(ctx).require().api()?;
        let app = app(ctx)?;
        let revoked = sign_out(app, user, devices::SignOut::Everywhere).await?;
        Ok(i32::try_from(revoked.len()).unwrap_or(i32::MAX))
    }
}
