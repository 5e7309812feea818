//! Stable `extensions.code` for the errors async-graphql raises itself (parse, validation,
//! limits, argument coercion), and the field-count limit.
//!
//! The codes are assigned by the operation pipeline, which parses the document itself and sees
//! the response, not by a schema extension: any extension puts async-graphql on its slow path
//! for every resolved field (a registry lookup and a boxed hook chain per field).

use async_graphql::{
    Response, ServerError, ServerResult,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use crate::kernel::graphql::error::ErrorCode;

/// Counts field selections in every operation and fragment of a document.
pub fn count_fields(document: &ExecutableDocument) -> usize {
    fn count(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => 1 + count(&field.node.selection_set.node),
                Selection::InlineFragment(fragment) => count(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = document.operations.iter().map(|(_, op)| count(&op.node.selection_set.node)).sum();
    let fragments: usize = document.fragments.values().map(|f| count(&f.node.selection_set.node)).sum();
    operations + fragments
}

/// Refuses a document with more than `max_fields` field selections.
pub fn check_field_count(document: &ExecutableDocument, max_fields: usize) -> ServerResult<()> {
    let fields = count_fields(document);
    if fields > max_fields {
        let message = format!("the document selects {fields} fields; at most {max_fields} are allowed");
        return Err(with_code(ServerError::new(message, None), ErrorCode::QueryTooComplex));
    }
    Ok(())
}

/// Sets `extensions.code` on an error that has none.
pub fn with_code(mut err: ServerError, code: ErrorCode) -> ServerError {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code.as_str());
    }
    err
}

/// async-graphql's message when an operation is deeper than `limit_depth`.
///
/// async-graphql's validation errors carry no error type, `source` or rule name, so the depth
/// and complexity limits are told apart from each other and from rule violations by these exact
/// messages, which it raises without a position (every rule violation has one). The
/// integration test `graphql_errors` runs the real schema and fails if an upgrade rewords them.
pub const DEPTH_LIMIT_MESSAGE: &str = "Query is nested too deep.";

/// async-graphql's message when an operation is more complex than `limit_complexity`
/// (see [`DEPTH_LIMIT_MESSAGE`]).
pub const COMPLEXITY_LIMIT_MESSAGE: &str = "Query is too complex.";

/// The code of an error raised before execution. The depth and complexity limits have their
/// own codes; everything else async-graphql refuses before running the operation (rule
/// violations, and its recursion-depth and directive-count limits) is
/// `GRAPHQL_VALIDATION_FAILED`. Exact messages, so client text quoted in a rule violation
/// (`found "too complex"`) never picks a limit code.
fn classify_validation(err: &ServerError) -> ErrorCode {
    if !err.locations.is_empty() {
        return ErrorCode::GraphqlValidationFailed;
    }
    match err.message.as_str() {
        DEPTH_LIMIT_MESSAGE => ErrorCode::QueryTooDeep,
        COMPLEXITY_LIMIT_MESSAGE => ErrorCode::QueryTooComplex,
        _ => ErrorCode::GraphqlValidationFailed,
    }
}

/// Gives every error of an executed response that has no code its code: with no `data` and
/// no path, the operation never ran — a validation failure ([`classify_validation`]); otherwise
/// async-graphql rejected an argument or variable while executing, which is the client's input.
pub fn assign_codes(response: &mut Response) {
    if response.errors.is_empty() {
        return;
    }
    let never_ran = response.data == async_graphql::Value::Null;
    let errors = std::mem::take(&mut response.errors);
    response.errors = errors
        .into_iter()
        .map(|e| {
            let code = if never_ran && e.path.is_empty() { classify_validation(&e) } else { ErrorCode::BadUserInput };
            with_code(e, code)
        })
        .collect();
}
