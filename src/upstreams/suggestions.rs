//! Suggestions from the recommendations service joined with our own users and posts:
//! `suggestedUsers` and `suggestedPosts` for the viewer (one upstream call serves both) and
//! `User.relatedUsers` (one call for every user on the screen). Ids from the service go
//! through the ordinary loaders, so rows that vanished are skipped and a screen costs one
//! statement per kind whatever the number of suggestions.

use async_graphql::{Context, Object, SimpleObject};

use crate::social::loaders;
use crate::upstreams::recommendations::{SUGGESTIONS_PER_SUBJECT, Scored, Suggestions};
use crate::{
    kernel::graphql::{
        context::viewer,
        error::{DomainResultExt, ErrorCode, api_error, loader_error},
    },
    social::{Post, User},
    upstreams::loaders::upstream_error,
};

/// Default number of suggestions shown.
const DEFAULT_FIRST: i32 = 5;

/// A user suggested by the recommendations service.
#[derive(SimpleObject)]
pub struct UserSuggestion {
    /// The suggested user.
    pub user: User,
    /// Relevance from the service; higher is better.
    pub score: f64,
    /// Why (machine-readable, from the service), e.g. `FOLLOWED_BY_PEOPLE_YOU_FOLLOW`.
    pub reason: Option<String>,
}

/// A post suggested by the recommendations service.
#[derive(SimpleObject)]
pub struct PostSuggestion {
    /// The suggested post.
    pub post: Post,
    /// Relevance from the service; higher is better.
    pub score: f64,
    /// Why (machine-readable, from the service).
    pub reason: Option<String>,
}

/// The suggestion entry points.
#[derive(Default)]
pub struct SuggestionsQuery;

#[Object]
impl SuggestionsQuery {
    /// People the viewer may want to follow, best first. Null with `UPSTREAM_UNAVAILABLE` or
    /// `UPSTREAM_TIMEOUT` when the recommendations service cannot answer (reason
    /// `NOT_CONFIGURED` when none is set up); the rest of the screen is unaffected.
    #[graphql(complexity = "suggestion_complexity(child_complexity, first)", cache_control(private, max_age = 60))]
    async fn suggested_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, 1 to 20 (default 5).")] first: Option<i32>,
    ) -> async_graphql::Result<Option<Vec<UserSuggestion>>> {
        let first = parse_first(first)?;
        let me = viewer(ctx).require().api()?;
        let suggestions = suggestions_for(ctx, me).await?;
        Ok(Some(users(ctx, &suggestions.users, first, me).await?))
    }

    /// Posts the viewer may want to read, best first (same service and failure rules as
    /// `suggestedUsers`; both share one upstream call).
    #[graphql(complexity = "suggestion_complexity(child_complexity, first)", cache_control(private, max_age = 60))]
    async fn suggested_posts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, 1 to 20 (default 5).")] first: Option<i32>,
    ) -> async_graphql::Result<Option<Vec<PostSuggestion>>> {
        let first = parse_first(first)?;
        let me = viewer(ctx).require().api()?;
        let suggestions = suggestions_for(ctx, me).await?;
        Ok(Some(posts(ctx, &suggestions.posts, first).await?))
    }
}

/// Complexity of a suggestion list: the children of each shown item.
pub fn suggestion_complexity(child: usize, first: Option<i32>) -> usize {
    let first = first.unwrap_or(DEFAULT_FIRST).clamp(1, SUGGESTIONS_PER_SUBJECT as i32) as usize;
    first.saturating_mul(child).saturating_add(1)
}

/// Checks `first` (1 to [`SUGGESTIONS_PER_SUBJECT`]).
pub fn parse_first(first: Option<i32>) -> async_graphql::Result<usize> {
    let first = first.unwrap_or(DEFAULT_FIRST);
    if first < 1 || first as usize > SUGGESTIONS_PER_SUBJECT {
        return Err(api_error(
            ErrorCode::BadUserInput,
            format!("first must be between 1 and {SUGGESTIONS_PER_SUBJECT}"),
        ));
    }
    Ok(first as usize)
}

/// The suggestions for `subject` through the operation's loader (one upstream call per
/// batch of subjects), or the upstream error for this field.
pub async fn suggestions_for(ctx: &Context<'_>, subject: i64) -> async_graphql::Result<Suggestions> {
    let outcome = match loaders(ctx)?.suggestions.load_one(subject).await {
        Ok(outcome) => outcome,
        Err(never) => match never {},
    };
    match outcome {
        Some(Ok(found)) => Ok(found.unwrap_or_default()),
        Some(Err(err)) => Err(upstream_error("recommendations", &err)),
        None => Ok(Suggestions::default()),
    }
}

/// The first `first` suggested users that still exist, without `exclude`, in the service's
/// order.
pub async fn users(
    ctx: &Context<'_>,
    scored: &[Scored],
    first: usize,
    exclude: i64,
) -> async_graphql::Result<Vec<UserSuggestion>> {
    let ids: Vec<i64> = scored.iter().map(|s| s.id).filter(|id| *id != exclude).collect();
    let rows = loaders(ctx)?.users.load_many(ids).await.map_err(loader_error)?;
    Ok(in_service_order(scored, rows, first, |user, s| UserSuggestion {
        user: User::from(user),
        score: s.score,
        reason: s.reason.clone(),
    }))
}

/// The first `first` suggested posts that still exist, in the service's order.
async fn posts(ctx: &Context<'_>, scored: &[Scored], first: usize) -> async_graphql::Result<Vec<PostSuggestion>> {
    let ids: Vec<i64> = scored.iter().map(|s| s.id).collect();
    let rows = loaders(ctx)?.posts.load_many(ids).await.map_err(loader_error)?;
    Ok(in_service_order(scored, rows, first, |post, s| PostSuggestion {
        post: Post::from(post),
        score: s.score,
        reason: s.reason.clone(),
    }))
}

/// Joins the service's ranking with the loaded rows: its order, rows that vanished skipped,
/// at most `first`.
fn in_service_order<R, T>(
    scored: &[Scored],
    mut rows: std::collections::HashMap<i64, R>,
    first: usize,
    make: impl Fn(R, &Scored) -> T,
) -> Vec<T> {
    scored.iter().filter_map(|s| Some(make(rows.remove(&s.id)?, s))).take(first).collect()
}
