//! Feature flags in the API: `flags(keys:)` evaluates flags for the caller (the signed-in
//! user, else the device from `X-Device-Id`; the app's headers as the context), with the
//! reason in OpenFeature's vocabulary; the `bootstrap` carries the same list.

use async_graphql::{Context, Object, SimpleObject};

use super::{
    catalog::Catalog,
    context,
    evaluate::{Evaluation, EvaluationError, Reason},
};
use crate::{
    app::{App, app},
    kernel::{
        graphql::{
            context::viewer,
            error::{ErrorCode, api_error},
        },
        request::ClientInfo,
    },
};

/// Most keys one `flags(keys:)` call evaluates.
pub const MAX_KEYS: usize = 100;

/// One flag's value for the caller.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct FlagEvaluation {
    /// The flag's key.
    pub key: String,
    /// On or off (off when the flag is unknown or could not be evaluated).
    pub enabled: bool,
    /// The variant of a multivariate flag (`disabled` when there is none).
    pub variant: String,
    /// The variant's payload, as text (see `payloadType`).
    pub payload: Option<String>,
    /// `string`, `json`, `csv` or `number`.
    pub payload_type: Option<String>,
    /// Why (OpenFeature): `STATIC`, `TARGETING_MATCH`, `SPLIT`, `DEFAULT`, `DISABLED`, `ERROR`.
    pub reason: Reason,
    /// With `ERROR`: `FLAG_NOT_FOUND`, `TARGETING_KEY_MISSING`, `PARSE_ERROR`, …
    pub error_code: Option<EvaluationError>,
}

impl FlagEvaluation {
    /// The API form of `evaluation` of flag `key`.
    pub fn new(key: String, evaluation: Evaluation) -> Self {
        let payload = evaluation.variant.payload;
        Self {
            key,
            enabled: evaluation.enabled,
            variant: evaluation.variant.name,
            payload_type: payload.as_ref().map(|p| p.kind.clone()),
            payload: payload.map(|p| p.value),
            reason: evaluation.reason,
            error_code: evaluation.error,
        }
    }
}

/// Every flag (or the flags `keys`) for the caller of `ctx`, counted in the metrics.
pub fn for_caller(ctx: &Context<'_>, app: &App, keys: Option<&[String]>) -> Vec<FlagEvaluation> {
    let client = ctx.data::<ClientInfo>().cloned().unwrap_or_default();
    let context = context::for_request(viewer(ctx).user_id, &client, client.ip, &app.settings.flags.environment);
    let catalog = app.flags.current();
    let evaluations = evaluate(&catalog, &context, keys);
    for flag in &evaluations {
        app.metrics.count_flag_evaluation(&flag.key, &flag.variant, flag.enabled);
    }
    evaluations
}

fn evaluate(catalog: &Catalog, context: &super::evaluate::Context, keys: Option<&[String]>) -> Vec<FlagEvaluation> {
    match keys {
        Some(keys) => keys.iter().map(|k| FlagEvaluation::new(k.clone(), catalog.evaluate(k, context))).collect(),
        None => catalog.evaluate_all(context).into_iter().map(|(k, e)| FlagEvaluation::new(k, e)).collect(),
    }
}

/// The `flags` root field.
#[derive(Default)]
pub struct FlagsQuery;

#[Object]
impl FlagsQuery {
    /// Feature flags evaluated for the caller: signed in, for the user; signed out, for the
    /// device (`X-Device-Id`). Rules see `platform`, `appVersion`, `appBuild`, `osVersion`
    /// (`X-OS-Version`), `locale`, `timezone` and `deviceId`. Without `keys`, every flag.
    #[graphql(cache_control(private))]
    async fn flags(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The flags to evaluate (at most 100); all when omitted.")] keys: Option<Vec<String>>,
    ) -> async_graphql::Result<Vec<FlagEvaluation>> {
        if keys.as_ref().is_some_and(|k| k.len() > MAX_KEYS) {
            return Err(api_error(ErrorCode::BadUserInput, format!("at most {MAX_KEYS} keys")));
        }
        Ok(for_caller(ctx, app(ctx)?, keys.as_deref()))
    }
}
