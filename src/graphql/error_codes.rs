//! A schema extension that gives parse, validation and limit errors their stable
//! `extensions.code`, and records the executed operation's name for metrics.

use std::sync::{Arc, Mutex};

use async_graphql::{
    Response, ServerError, ServerResult, ValidationResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use super::error::ErrorCode;

/// Factory registered on the schema; `max_fields` bounds the selections of one document.
pub struct ErrorCodes {
    /// Most field selections (aliases included, fragments counted once) in one document.
    pub max_fields: usize,
}

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension { max_fields: self.max_fields })
    }
}

struct ErrorCodesExtension {
    max_fields: usize,
}

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

/// Where the executed operation's name is written (request data).
#[derive(Clone, Default)]
pub struct OperationName(pub Arc<Mutex<Option<String>>>);

impl OperationName {
    /// The recorded name, if any.
    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|n| n.clone())
    }
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

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document =
            next.run(ctx, query, variables).await.map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))?;
        let fields = count_fields(&document);
        if fields > self.max_fields {
            let message = format!("the document selects {fields} fields; at most {} are allowed", self.max_fields);
            return Err(with_code(ServerError::new(message, None), ErrorCode::QueryTooComplex));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let code = classify_validation(&e);
                    with_code(e, code)
                })
                .collect()
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let (Some(name), Ok(slot)) = (operation_name, ctx.data::<OperationName>())
            && let Ok(mut slot) = slot.0.lock()
        {
            *slot = Some(name.to_owned());
        }
        let mut response = next.run(ctx, operation_name).await;
        // Errors raised by async-graphql itself while executing (argument coercion, for
        // example) carry no code: they are always about the client's input.
        response.errors = response.errors.into_iter().map(|e| with_code(e, ErrorCode::BadUserInput)).collect();
        response
    }
}
