//! Push in the schema: `registerPushToken` and `removePushToken` on the current device (the
//! device of the access token). Both take an optional `idempotencyKey` and return the device
//! record with its push state.

use async_graphql::{Context, InputObject, Object};
use serde::Serialize;

use crate::app::app;
use crate::{
    auth::{Device, list_devices},
    kernel::{
        graphql::{
            context::viewer,
            error::{DomainResultExt, ErrorCode, api_error},
        },
        idempotency::{self, Attempt},
        validate,
    },
    push::{
        error::{PushError, PushResultExt},
        tokens::{self, Environment, Provider, Registration},
    },
};

/// Input of `registerPushToken`.
#[derive(InputObject, Serialize)]
pub struct RegisterPushTokenInput {
    /// The push service that issued the token.
    pub provider: Provider,
    /// The token: APNs as hex (64+ digits), FCM as given by the SDK.
    pub token: String,
    /// APNs only: the token's environment (`SANDBOX` for development builds); default
    /// `PRODUCTION`.
    pub environment: Option<Environment>,
    /// Retries with the same key return the first result.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// Push mutations.
#[derive(Default)]
pub struct PushMutation;

/// Runs `effect` on the current device once per idempotency key; returns the device.
async fn on_current_device<I: Serialize>(
    ctx: &Context<'_>,
    operation: &str,
    key: Option<String>,
    input: &I,
    effect: impl AsyncFnOnce(&sea_orm::DatabaseTransaction, i64, i64) -> Result<(), PushError>,
) -> async_graphql::Result<Device> {
    let viewer = viewer(ctx);
    let user = viewer.require().api()?;
    let device = viewer.device_id.ok_or(PushError::NoDevice).api()?;
    let app = app(ctx)?;
    let key = key.as_deref().map(validate::idempotency_key).transpose().api()?;
    match idempotency::begin::<i64>(&app.db, &app.settings.idempotency, user, key.as_deref(), operation, input)
        .await
        .api()?
    {
        Attempt::Replay(_) => {}
        Attempt::First(tx) => {
            effect(tx.tx(), user, device).await.api()?;
            tx.finish(&device).await.api()?;
        }
    }
    let rows = list_devices(app.db.conn(), user).await.api()?;
    rows.into_iter()
        .find(|d| d.id == device)
        .map(|row| Device::from_row(row, Some(device)))
        .ok_or_else(|| api_error(ErrorCode::NotFound, "device not found"))
}

#[Object]
impl PushMutation {
    /// Registers (or replaces) the push token of the current device. Call it on every launch
    /// with the token the OS gives: tokens change, and a token reported dead starts working
    /// again once re-registered.
    async fn register_push_token(
        &self,
        ctx: &Context<'_>,
        input: RegisterPushTokenInput,
    ) -> async_graphql::Result<Device> {
        let environment = match (input.provider, input.environment) {
            (Provider::Fcm, Some(_)) => {
                return Err(api_error(ErrorCode::BadUserInput, "environment applies to APNS tokens only"));
            }
            (_, environment) => environment.unwrap_or_default(),
        };
        let registration = Registration {
            provider: input.provider,
            token: tokens::validate(input.provider, &input.token).api()?,
            environment,
        };
        on_current_device(
            ctx,
            "registerPushToken",
            input.idempotency_key.clone(),
            &registration,
            async |tx, user, device| tokens::register(tx, user, device, &registration).await.map(|_| ()),
        )
        .await
    }

    /// Removes the current device's push token (the user turned notifications off).
    async fn remove_push_token(
        &self,
        ctx: &Context<'_>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Device> {
        on_current_device(ctx, "removePushToken", idempotency_key, &(), async |tx, user, device| {
            tokens::remove(tx, user, device).await.map(|_| ())
        })
        .await
    }
}
