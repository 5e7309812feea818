//! The shared feeds as the transport's `SharedSubscriptions` hook: which subscriptions they
//! serve ([`shared_start`]: one root field `events` or `presenceChanged`), the operation a
//! group of subscribers runs ([`Operation`], resolved through the transport's resolve
//! callback), and [`SharedFeeds`], which checks an operation once and joins it to its user's
//! feed in [`crate::realtime::fanout`].

use std::sync::Arc;

use async_graphql::{
    Request, Response, Variables,
    parser::types::{ExecutableDocument, Selection},
};
use futures_util::stream::BoxStream;
use prometheus_client::metrics::counter::Counter;

use crate::{
    kernel::{
        graphql::ordering::selected_operation,
        hooks::{Offered, Resolve, SharedSubscriptions},
    },
    realtime::{fanout::Fanout, graphql::Preloaded, stream::Item},
};

/// A subscription field served by the feeds, and where it starts.
#[derive(Debug, PartialEq, Eq)]
pub struct SharedStart {
    /// `afterSeq` as given (`None`: only new events).
    pub after: Option<i64>,
}

/// The shape the feeds serve: a subscription whose one root field is `events` or
/// `presenceChanged` without directives, with `afterSeq` absent, a literal or a variable.
/// Anything else (fragments at the root, variable defaults, other fields) runs as its own
/// stream.
pub fn shared_start(document: &ExecutableDocument, request: &Request) -> Option<SharedStart> {
    use async_graphql::{Value, parser::types::OperationType::Subscription};
    let operation = selected_operation(document, request.operation_name.as_deref())?;
    if operation.node.ty != Subscription {
        return None;
    }
    let [item] = operation.node.selection_set.node.items.as_slice() else { return None };
    let Selection::Field(field) = &item.node else { return None };
    let field = &field.node;
    if !field.directives.is_empty() || !matches!(field.name.node.as_str(), "events" | "presenceChanged") {
        return None;
    }
    let mut after = None;
    for (name, value) in &field.arguments {
        if name.node != "afterSeq" {
            return None;
        }
        let value = value
            .node
            .clone()
            .into_const_with(|variable| {
                let defined = operation.node.variable_definitions.iter().find(|d| d.node.name.node == variable);
                match defined {
                    Some(defined) if defined.node.default_value.is_none() => {
                        Ok(request.variables.get(&variable).cloned().unwrap_or(Value::Null))
                    }
                    _ => Err(()),
                }
            })
            .ok()?;
        after = match value {
            Value::Null => None,
            Value::Number(number) => Some(number.as_i64()?),
            _ => return None,
        };
    }
    Some(SharedStart { after })
}

/// The operation a group of subscriptions runs, resolved against each event through the
/// first subscriber's [`Resolve`] callback (same user, same operation: same results).
pub struct Operation {
    resolve: Resolve,
    resolutions: Counter,
    pub(super) key: String,
    query: String,
    operation_name: Option<String>,
    variables: Variables,
    document: Arc<ExecutableDocument>,
}

impl Operation {
    /// The operation of `request` (already admitted as `document`), resolved by `resolve`.
    pub fn new(resolve: Resolve, resolutions: Counter, request: &Request, document: Arc<ExecutableDocument>) -> Self {
        let variables_json = serde_json::to_string(&request.variables).unwrap_or_default();
        let name = request.operation_name.clone().unwrap_or_default();
        let key = format!("{}\u{0}{name}\u{0}{variables_json}", request.query);
        Self {
            resolve,
            resolutions,
            key,
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
            document,
        }
    }

    /// A fresh request over `items` only (no log read, no waiting).
    fn request(&self, items: Vec<Result<Item, async_graphql::Error>>) -> Request {
        let mut request = Request::new(self.query.clone()).variables(self.variables.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name);
        }
        request.set_parsed_query(ExecutableDocument::clone(&self.document));
        request.data(Preloaded(items.into()))
    }

    /// The responses over no events: empty when the operation is accepted, else its
    /// validation or authorisation errors.
    pub(super) async fn check(&self) -> Vec<Response> {
        (self.resolve)(self.request(Vec::new())).await
    }

    pub(super) async fn resolve(&self, items: Vec<Result<Item, async_graphql::Error>>) -> Vec<Arc<Response>> {
        self.resolutions.inc();
        let responses = (self.resolve)(self.request(items)).await;
        responses.into_iter().map(Arc::new).collect()
    }
}

/// The feeds as the transport's [`SharedSubscriptions`] hook.
pub struct SharedFeeds(pub Arc<Fanout>);

impl SharedSubscriptions for SharedFeeds {
    fn serve(&self, offered: Offered<'_>, resolve: Resolve) -> Option<BoxStream<'static, Response>> {
        let start = shared_start(offered.document, offered.request)?;
        let after = offered.resume.or(start.after);
        let resolutions = self.0.app.metrics.live.feed_resolutions.clone();
        let operation = Operation::new(resolve, resolutions, offered.request, offered.document.clone());
        let (fanout, user) = (self.0.clone(), offered.user);
        Some(Box::pin(async_stream::stream! {
            // Checked like any operation (validation, authorisation) by resolving it over no
            // events, then fed.
            let refused = Box::pin(operation.check()).await;
            if !refused.is_empty() {
                for response in refused {
                    yield response;
                }
                return;
            }
            let mut membership = fanout.join(user, operation, after);
            while let Some(response) = membership.next().await {
                yield copy(&response);
            }
        }))
    }
}

/// A shared result for one subscriber (`Response` is not `Clone`).
fn copy(shared: &Response) -> Response {
    let mut response = Response::new(shared.data.clone());
    response.extensions = shared.extensions.clone();
    response.cache_control = shared.cache_control;
    response.errors = shared.errors.clone();
    response.http_headers = shared.http_headers.clone();
    response
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn start(query: &str, variables: serde_json::Value) -> Option<SharedStart> {
        let document = parse_query(query).ok()?;
        let request = Request::new(query).variables(Variables::from_json(variables));
        shared_start(&document, &request)
    }

    #[test]
    fn the_shared_shape_is_recognised() {
        assert_eq!(start("subscription { events { seq } }", serde_json::json!({})), Some(SharedStart { after: None }));
        assert_eq!(
            start("subscription { e: events(afterSeq: 7) { seq } }", serde_json::json!({})),
            Some(SharedStart { after: Some(7) })
        );
        assert_eq!(
            start("subscription S($s: Int) { presenceChanged(afterSeq: $s) { seq } }", serde_json::json!({"s": 3})),
            Some(SharedStart { after: Some(3) })
        );
        assert_eq!(
            start("subscription S($s: Int) { events(afterSeq: $s) { seq } }", serde_json::json!({})),
            Some(SharedStart { after: None })
        );
    }

    #[test]
    fn other_shapes_run_on_their_own() {
        let none = serde_json::json!({});
        assert_eq!(start("query { events { seq } }", none.clone()), None);
        assert_eq!(start("subscription { messageAdded(conversationId: \"x\") { seq } }", none.clone()), None);
        assert_eq!(start("subscription { events @include(if: true) { seq } }", none.clone()), None);
        assert_eq!(start("subscription { ...F } fragment F on Subscription { events { seq } }", none.clone()), None);
        assert_eq!(start("subscription S($s: Int = 4) { events(afterSeq: $s) { seq } }", none.clone()), None);
        assert_eq!(start("subscription { events(afterSeq: \"7\") { seq } }", none), None);
    }
}
