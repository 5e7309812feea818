//! The messages of async-graphql's own errors that the error codes depend on, on the real schema
//! with its real limits and the pipeline's parse cache. async-graphql's validation errors carry no
//! type or rule name, so `error_codes` tells its depth and complexity limits apart by their exact
//! text: a dependency upgrade that rewords one fails here instead of silently changing a code.

use async_graphql::{Request, Response, ServerError, Value};
use mobile_bff::{
    config::LimitSettings,
    kernel::graphql::{
        error_codes::{COMPLEXITY_LIMIT_MESSAGE, DEPTH_LIMIT_MESSAGE, assign_codes},
        parsed::ParsedDocuments,
    },
    schema::build_schema,
};

fn code(err: &ServerError) -> &str {
    match err.extensions.as_ref().and_then(|ext| ext.get("code")) {
        Some(Value::String(code)) => code,
        _ => "<none>",
    }
}

/// Runs `query` as the pipeline does: admitted through the parse cache, executed, coded.
async fn run(query: &str) -> Result<Response, ServerError> {
    let limits = LimitSettings::default();
    let document = ParsedDocuments::default().admit(query, limits.max_fields)?;
    let mut request = Request::new(query);
    request.set_parsed_query(document.as_ref().clone());
    let mut response = build_schema(None, &limits).execute(request).await;
    assign_codes(&mut response);
    Ok(response)
}

/// A response refused before execution: no data, and every error without a path (what
/// `assign_codes` takes for a validation failure). Returns its one error.
fn refused(response: &Response) -> &ServerError {
    assert_eq!(response.data, Value::Null, "refused before execution: {response:?}");
    assert!(response.errors.iter().all(|e| e.path.is_empty()), "no error has a path: {response:?}");
    assert_eq!(response.errors.len(), 1, "one error: {response:?}");
    &response.errors[0]
}

/// `levels` nested `following` connections (three selection sets each) under `viewer`.
fn nested(levels: usize) -> String {
    format!(
        "{{ viewer {{ {} handle{} }} }}",
        "following(first: 1) { edges { node { ".repeat(levels),
        " } } }".repeat(levels)
    )
}

#[tokio::test]
async fn depth_limit_message_is_the_one_classified() {
    // 31 selection sets deep, over `limits.max_depth` (15), under the parser's limit (64).
    let response = run(&nested(10)).await.expect("admitted");
    let error = refused(&response);
    assert_eq!(error.message, DEPTH_LIMIT_MESSAGE);
    assert_eq!(error.message, "Query is nested too deep.");
    assert!(error.locations.is_empty(), "raised without a position: {error:?}");
    assert_eq!(code(error), "QUERY_TOO_DEEP");
}

#[tokio::test]
async fn complexity_limit_message_is_the_one_classified() {
    let query = "{ feed(first: 100) { edges { node { comments(first: 100) { edges { node { author { \
        followers(first: 100) { edges { node { handle } } } } } } } } } } }";
    let response = run(query).await.expect("admitted");
    let error = refused(&response);
    assert_eq!(error.message, COMPLEXITY_LIMIT_MESSAGE);
    assert_eq!(error.message, "Query is too complex.");
    assert!(error.locations.is_empty(), "raised without a position: {error:?}");
    assert_eq!(code(error), "QUERY_TOO_COMPLEX");
}

#[tokio::test]
async fn directive_and_recursion_limits_are_validation_failures() {
    // `limit_directives(32)`: 33 directives on one field.
    let directives = "@include(if: true) ".repeat(33);
    let response = run(&format!("{{ __typename {directives}}}")).await.expect("admitted");
    let error = refused(&response);
    assert_eq!(error.message, "The number of directives on the field `__typename` cannot be greater than `32`");
    assert!(!error.locations.is_empty(), "raised at the field: {error:?}");
    assert_eq!(code(error), "GRAPHQL_VALIDATION_FAILED");

    // `limit_recursive_depth(64)`, reached through a fragment that spreads itself.
    let cycle = "{ viewer { ...Follows } } \
        fragment Follows on User { following(first: 1) { edges { node { ...Follows } } } }";
    let response = run(cycle).await.expect("admitted");
    let error = refused(&response);
    assert_eq!(error.message, "The recursion depth of the query cannot be greater than `64`");
    assert!(!error.locations.is_empty(), "raised at a selection set: {error:?}");
    assert_eq!(code(error), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn client_text_in_a_rule_violation_picks_no_limit_code() {
    let response = run("{ feed(first: \"too complex\") { edges { cursor } } }").await.expect("admitted");
    assert_eq!(response.data, Value::Null);
    assert!(
        response.errors.iter().any(|e| e.message.contains("too complex")),
        "the value is quoted back: {response:?}"
    );
    for error in &response.errors {
        assert_eq!(code(error), "GRAPHQL_VALIDATION_FAILED", "{error:?}");
    }
    let response = run("{ nosuchfield }").await.expect("admitted");
    assert_eq!(code(refused(&response)), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn parse_failures_are_coded_without_their_message() {
    // The parser's own nesting limit (64 selection sets) is a parse error, coded where the
    // document fails to parse whatever its message says.
    for query in ["{ viewer { ", nested(30).as_str()] {
        let error = run(query).await.expect_err("does not parse");
        assert_eq!(code(&error), "GRAPHQL_PARSE_FAILED", "{error:?}");
    }
}
