//! Stable `extensions.code` for the errors async-graphql raises itself (parse, validation,
//! limits, argument coercion), and the field-count limit.
//!
//! This used to be a schema extension; any extension makes async-graphql take its slow path
//! for every field (a registry lookup and a boxed hook chain per resolved field), so the codes
//! are now assigned by the HTTP layer, which parses the document itself and sees the response.

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

fn classify_validation(err: &ServerError) -> ErrorCode {
    if err.message.contains("nested too deep") {
        ErrorCode::QueryTooDeep
    } else if err.message.contains("too complex") || err.message.contains("too many directives") {
        ErrorCode::QueryTooComplex
    } else {
        ErrorCode::GraphqlValidationFailed
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
