//! `mobile-bff example-upstream`: a runnable recommendations service implementing the
//! contract in docs/upstreams.md over the BFF's own database (the seeded demo data), so the
//! home screen's suggestion sections are filled on a laptop. It is an example of the
//! contract, not part of the BFF: a real team points `upstreams.recommendations.base_url` at
//! its own service.
//!
//! Suggested users are accounts followed by the accounts the subject follows (scored by the
//! share of followees who follow them), topped up with the most-followed accounts; suggested
//! posts are the newest posts of the best suggested users.

use std::{collections::HashMap, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use crate::{dev::suggestion_queries as queries, kernel::db::Db};

/// Most subjects in one request.
pub const MAX_SUBJECTS: usize = 100;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 50;
/// Authors whose posts are suggested.
const POST_AUTHORS: usize = 5;

#[derive(Clone)]
struct ServiceState {
    db: Db,
    latency: Duration,
}

/// The service's routes: `POST /v1/suggestions:batch`, `GET /healthz` and `GET /readyz`. `latency` is added
/// to every answer (to try the BFF's deadline and timeouts).
pub fn router(db: Db, latency: Duration) -> Router {
    Router::new()
        .route("/v1/suggestions:batch", post(batch))
        .route("/healthz", get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .route("/readyz", get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(ServiceState { db, latency })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    subjects: Vec<String>,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

#[derive(Serialize)]
struct BatchResponse {
    results: Vec<SubjectResult>,
}

#[derive(Serialize)]
struct SubjectResult {
    subject: String,
    users: Vec<Scored>,
    posts: Vec<Scored>,
}

#[derive(Serialize)]
struct Scored {
    id: String,
    score: f64,
    reason: &'static str,
}

fn bad_request(message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": "BAD_REQUEST", "message": message } });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn batch(State(state): State<ServiceState>, body: Result<Json<BatchRequest>, JsonRejection>) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_request(&rejection.body_text()),
    };
    if request.subjects.len() > MAX_SUBJECTS {
        return bad_request(&format!("at most {MAX_SUBJECTS} subjects per request"));
    }
    if !(1..=MAX_LIMIT).contains(&request.limit) {
        return bad_request(&format!("limit must be 1..={MAX_LIMIT}"));
    }
    let mut subjects = Vec::with_capacity(request.subjects.len());
    for raw in &request.subjects {
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => subjects.push(id),
            _ => return bad_request("subjects are positive decimal ids"),
        }
    }
    subjects.sort_unstable();
    subjects.dedup();
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let mut results = Vec::with_capacity(subjects.len());
    for subject in subjects {
        match suggest(&state.db, subject, request.limit).await {
            Ok(result) => results.push(result),
            Err(err) => {
                tracing::error!(error = %err, "example upstream query failed");
                let body = serde_json::json!({ "error": { "code": "INTERNAL", "message": "internal error" } });
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
            }
        }
    }
    Json(BatchResponse { results }).into_response()
}

async fn suggest(db: &Db, subject: i64, limit: usize) -> Result<SubjectResult, sea_orm::DbErr> {
    let conn = db.conn();
    let mut users: Vec<Scored> = Vec::with_capacity(limit);
    let friends = queries::friends_of_friends(conn, subject, limit).await?;
    let strongest = friends.first().map_or(1, |c| c.n.max(1)) as f64;
    for candidate in friends {
        let score = 0.5 + 0.5 * candidate.n as f64 / strongest;
        users.push(Scored { id: candidate.id.to_string(), score, reason: "FOLLOWED_BY_PEOPLE_YOU_FOLLOW" });
    }
    if users.len() < limit {
        let popular = queries::popular(conn, subject, limit * 2).await?;
        let most = popular.first().map_or(1, |c| c.n.max(1)) as f64;
        for candidate in popular {
            if users.len() >= limit {
                break;
            }
            let id = candidate.id.to_string();
            if users.iter().any(|u| u.id == id) {
                continue;
            }
            users.push(Scored { id, score: 0.5 * candidate.n as f64 / most, reason: "POPULAR" });
        }
    }
    let author_scores: HashMap<i64, f64> =
        users.iter().take(POST_AUTHORS).filter_map(|u| Some((u.id.parse::<i64>().ok()?, u.score))).collect();
    let authors: Vec<i64> = author_scores.keys().copied().collect();
    let posts = queries::newest_posts_of(conn, &authors, limit)
        .await?
        .into_iter()
        .enumerate()
        .map(|(rank, p)| Scored {
            id: p.id.to_string(),
            score: author_scores.get(&p.author_id).copied().unwrap_or(0.0) / (1.0 + rank as f64 * 0.1),
            reason: "NEW_FROM_SUGGESTED_ACCOUNT",
        })
        .collect();
    Ok(SubjectResult { subject: subject.to_string(), users, posts })
}
