//! The OpenFeature Remote Evaluation Protocol (OFREP) over the feature flags, so that the
//! OpenFeature SDKs' OFREP providers evaluate against this server unmodified:
//! `POST /ofrep/v1/evaluate/flags/{key}` (one flag) and `POST /ofrep/v1/evaluate/flags`
//! (every flag, with an `ETag` and `304 Not Modified` for `If-None-Match`).
//!
//! Signed out, a flag is evaluated for the context's `targetingKey`; with a bearer token, for
//! the token's user (a `targetingKey` in the body cannot claim someone else). The body's
//! other context attributes become properties next to the app's headers (`X-Platform`,
//! `X-App-Version`, …). Every request spends the caller IP's query budget.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    context,
    definition::valid_key,
    evaluate::{Context, Evaluation, EvaluationError},
};
use crate::{
    app::App,
    auth::BearerVerifier,
    kernel::{
        graphql::error::ErrorCode,
        hooks::{Credentials, Verifier},
        http::{
            errors::{error_response, retry_later},
            observe::{ClientIp, client_info},
        },
        infra::rate_limit::Limit,
    },
};

/// Largest request body, in bytes.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most context attributes taken from a body.
const MAX_ATTRIBUTES: usize = 50;

/// The OFREP routes.
pub fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/ofrep/v1/evaluate/flags", post(bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(single))
        .with_state(app)
}

/// A caller's context, or the response that refuses the request.
async fn caller_context(app: &Arc<App>, headers: &HeaderMap, ip: ClientIp, body: &Bytes) -> Result<Context, Response> {
    if let Err(retry) = app.limits.check(Limit::QueryPerIp, &format!("ip:{}", ip.0)).await {
        return Err(retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many requests",
            retry.seconds(),
        ));
    }
    let user = match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(credentials) => match BearerVerifier(app.clone()).verify(credentials, Credentials::Header).await {
            Ok(session) => session.viewer.user_id,
            Err(_) => {
                return Err(error_response(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthenticated,
                    "invalid or expired token",
                ));
            }
        },
        None => None,
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(format!("the body is at most {MAX_BODY_BYTES} bytes")));
    }
    let parsed: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|err| invalid(format!("the body is not JSON: {err}")))?
    };
    let attributes = match parsed.get("context") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(invalid("context must be an object".into())),
    };
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!("a context has at most {MAX_ATTRIBUTES} attributes")));
    }
    let client = client_info(headers);
    let mut context = context::for_request(user, &client, Some(ip.0), &app.settings.flags.environment);
    for (name, value) in attributes {
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if name.len() > 100 || text.len() > 1000 {
            return Err(invalid(format!("context attribute {name:?} is too long")));
        }
        match name.as_str() {
            // The token's user wins over a claimed key.
            "targetingKey" | "userId" if user.is_none() => context.user_id = Some(text).filter(|t| !t.is_empty()),
            "targetingKey" | "userId" => {}
            "sessionId" => context.session_id = Some(text),
            _ => {
                context.properties.insert(name, text);
            }
        }
    }
    Ok(context)
}

fn invalid(details: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "errorCode": "INVALID_CONTEXT", "errorDetails": details })))
        .into_response()
}

/// The OFREP value of an evaluation: the variant's payload (typed) for a multivariate flag,
/// else whether the flag is on.
fn value(evaluation: &Evaluation) -> Value {
    match &evaluation.variant.payload {
        Some(payload) if evaluation.variant.enabled => match payload.kind.as_str() {
            "json" => serde_json::from_str(&payload.value).unwrap_or_else(|_| Value::String(payload.value.clone())),
            "number" => payload
                .value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(payload.value.clone()), Value::Number),
            _ => Value::String(payload.value.clone()),
        },
        None if evaluation.variant.enabled => Value::String(evaluation.variant.name.clone()),
        _ => Value::Bool(evaluation.enabled),
    }
}

/// One flag in OFREP's form: a success or an error item.
fn item(key: &str, evaluation: &Evaluation) -> Value {
    match evaluation.error {
        Some(error) => json!({ "key": key, "errorCode": error.as_str(), "errorDetails": error_details(error) }),
        None => json!({
            "key": key,
            "value": value(evaluation),
            "reason": serde_json::to_value(evaluation.reason).unwrap_or(Value::Null),
            "variant": evaluation.variant.name,
            "metadata": {},
        }),
    }
}

fn error_details(error: EvaluationError) -> &'static str {
    match error {
        EvaluationError::FlagNotFound => "no flag with this key",
        EvaluationError::TargetingKeyMissing => {
            "this flag rolls out by user: send context.targetingKey or a bearer token"
        }
        EvaluationError::ParseError => "the stored flag cannot be read",
        _ => "the flag could not be evaluated",
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn single(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    axum::Extension(ip): axum::Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !valid_key(&key) {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "key": key, "errorCode": "INVALID_CONTEXT", "errorDetails": "not a flag key" }),
        );
    }
    let context = match caller_context(&app, &headers, ip, &body).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let evaluation = app.flags.current().evaluate(&key, &context);
    app.metrics.count_flag_evaluation(&key, &evaluation.variant.name, evaluation.enabled);
    let status = match evaluation.error {
        None => StatusCode::OK,
        Some(EvaluationError::FlagNotFound) => StatusCode::NOT_FOUND,
        Some(_) => StatusCode::BAD_REQUEST,
    };
    json_response(status, &item(&key, &evaluation))
}

async fn bulk(
    State(app): State<Arc<App>>,
    axum::Extension(ip): axum::Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let context = match caller_context(&app, &headers, ip, &body).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let evaluations: BTreeMap<String, Evaluation> = app.flags.current().evaluate_all(&context).into_iter().collect();
    let flags: Vec<Value> = evaluations.iter().map(|(key, e)| item(key, e)).collect();
    let body = json!({ "flags": flags });
    let text = body.to_string();
    let etag = format!("\"{}\"", crate::kernel::idempotency::hex(&Sha256::digest(text.as_bytes())[..16]));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        for (key, e) in &evaluations {
            app.metrics.count_flag_evaluation(key, &e.variant.name, e.enabled);
        }
        json_response(StatusCode::OK, &body)
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}
