//! The one operation pipeline every transport runs (`POST`/`GET /graphql`, WebSocket, SSE):
//! admit the document (parse cache and field limit), pick the rate-limit budget, throttle,
//! prepare the request data, execute with the deterministic batch driver, and give every
//! error its code.
//!
//! Budgets ([`Pipeline::budget`]): every operation spends several budgets at once and is
//! refused when any is exhausted — its IP's (always, signed in or not), its user's (else,
//! anonymous, the IP's client budget), and its device's only when the `X-Device-Id` header
//! is the device the access token was issued to (a header alone is client-chosen: a random
//! one per request must not open a fresh budget). Mutation root fields the concerns list in
//! [`Hooks::budgets`] spend their own budget instead of the user's: sign-in per IP, refresh
//! per device header (plus the IP's mutation budget).

use std::{net::IpAddr, sync::Arc};

use async_graphql::{
    Data, Request, Response, ServerError,
    parser::types::{ExecutableDocument, OperationType, Selection},
};
use futures_util::{StreamExt, stream::BoxStream};

use super::{
    batch_driver::{self, BatchSpawner},
    error::rate_limited,
    error_codes::assign_codes,
    ordering::selected_operation,
};
use crate::kernel::{
    Kernel,
    hooks::{Hooks, Resolve, Scope},
    infra::{rate_limit::Limit, trace::TraceContext},
    request::{ClientInfo, Viewer},
};

/// Who runs an operation, from where.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    /// The verified caller (anonymous without a token).
    pub viewer: Viewer,
    /// The app's headers.
    pub client: &'a ClientInfo,
    /// The client's address.
    pub ip: IpAddr,
    /// The request id (HTTP requests).
    pub request_id: Option<&'a str>,
    /// The trace the operation belongs to (from `traceparent`, or a new one).
    pub trace: TraceContext,
    /// `Last-Event-ID` of an SSE reconnect.
    pub resume: Option<i64>,
}

/// A document that parsed and passed the field limit, attached to its request.
pub struct Admitted {
    /// The request, with the parsed document set.
    pub request: Request,
    /// The parsed document (shared with the parse cache).
    pub document: Arc<ExecutableDocument>,
    /// The selected operation's type, if the document names one.
    pub kind: Option<OperationType>,
}

/// The pipeline: the kernel's services and the concerns' hooks.
#[derive(Clone)]
pub struct Pipeline {
    kernel: Arc<Kernel>,
    hooks: Hooks,
}

impl Pipeline {
    /// A pipeline over `kernel` calling `hooks`.
    pub fn new(kernel: Arc<Kernel>, hooks: Hooks) -> Self {
        Self { kernel, hooks }
    }

    /// The kernel's services.
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.kernel
    }

    /// The concerns' hooks.
    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Parses `request`'s document through the shared cache and applies the field limit.
    pub fn admit(&self, mut request: Request) -> Result<Admitted, ServerError> {
        let document = self.kernel.parsed.admit(&request.query, self.kernel.settings.limits.max_fields)?;
        let kind = selected_operation(&document, request.operation_name.as_deref()).map(|op| op.node.ty);
        request.set_parsed_query(ExecutableDocument::clone(&document));
        Ok(Admitted { request, document, kind })
    }

    /// Which budgets the operation spends, and whose.
    pub fn budget(&self, admitted: &Admitted, caller: &Caller<'_>) -> Vec<(Limit, String)> {
        let ip = format!("ip:{}", caller.ip);
        let header = caller.client.device_id;
        // The device counts only when the header names the token's own device.
        let device = header.filter(|d| caller.viewer.client_device_id == Some(*d)).map(|d| format!("d:{d}"));
        let client = caller.viewer.user_id.map_or_else(|| ip.clone(), |u| format!("u:{u}"));
        let spend = |ip_limit: Limit, client_limit: Limit| {
            let mut keys = vec![(ip_limit, ip.clone()), (client_limit, client.clone())];
            keys.extend(device.clone().map(|d| (client_limit, d)));
            keys
        };
        if admitted.kind != Some(OperationType::Mutation) {
            return spend(Limit::QueryPerIp, Limit::QueryPerClient);
        }
        let name = admitted.request.operation_name.as_deref();
        let roots: Vec<&str> = selected_operation(&admitted.document, name)
            .map(|operation| {
                operation
                    .node
                    .selection_set
                    .node
                    .items
                    .iter()
                    .filter_map(|item| match &item.node {
                        Selection::Field(field) => Some(field.node.name.node.as_str()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let special = self.hooks.budgets.iter().find(|b| roots.contains(&b.field)).map(|b| b.limit);
        match special {
            // Refreshing is anonymous (the access token has expired): the header is all there
            // is to key the device budget by, and the IP's mutation budget bounds random ones.
            Some(Limit::RefreshPerDevice) => {
                let device = header.map_or_else(|| ip.clone(), |d| format!("d:{d}"));
                vec![(Limit::MutationPerIp, ip), (Limit::RefreshPerDevice, device)]
            }
            Some(Limit::MutationPerUser) | None => spend(Limit::MutationPerIp, Limit::MutationPerUser),
            Some(limit) => vec![(limit, ip)],
        }
    }

    /// Spends the operation's budgets; the `RATE_LIMITED` error when one is exhausted.
    pub async fn throttle(&self, admitted: &Admitted, caller: &Caller<'_>) -> Result<(), ServerError> {
        let keys = self.budget(admitted, caller);
        self.kernel.limits.check_all(&keys).await.map_err(|retry| {
            let mut error = rate_limited(retry).into_server_error(async_graphql::Pos::default());
            error.locations.clear();
            error
        })
    }

    /// `request` with the caller's data and the concerns' per-operation data.
    pub fn prepare(&self, request: Request, caller: &Caller<'_>, spawner: &BatchSpawner) -> Request {
        let scope = Scope {
            viewer: caller.viewer,
            client: caller.client,
            spawner,
            request_id: caller.request_id,
            trace: caller.trace,
            resume: caller.resume,
        };
        let mut request = self
            .hooks
            .prepare
            .prepare(request, &scope)
            .data(caller.viewer)
            .data(ClientInfo { ip: Some(caller.ip), ..caller.client.clone() });
        if !self.kernel.documents.introspection_allowed() {
            request = request.disable_introspection();
        }
        request
    }

    /// Runs an admitted query or mutation (already throttled) with fresh loaders.
    pub async fn execute(&self, admitted: Admitted, caller: &Caller<'_>) -> Response {
        let (spawner, queue) = batch_driver::channel();
        let request = self.prepare(admitted.request, caller, &spawner);
        // Boxed: async-graphql's execution future is kilobytes, and inline it would make every
        // future above it (this one, the handler's, axum's) that large to create and move.
        let mut response = Box::pin(batch_driver::drive(self.hooks.engine.execute(request), queue)).await;
        assign_codes(&mut response);
        response
    }

    /// Runs an admitted operation (already throttled) as a stream with fresh loaders.
    pub fn execute_stream(
        &self,
        request: Request,
        caller: &Caller<'_>,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let (spawner, queue) = batch_driver::channel();
        let request = self.prepare(request, caller, &spawner);
        let stream = self.hooks.engine.execute_stream(request, session);
        batch_driver::drive_stream(stream, queue)
            .map(|mut response| {
                assign_codes(&mut response);
                response
            })
            .boxed()
    }

    /// A callback that resolves one request as `caller` would, collecting its responses.
    pub fn resolver(&self, viewer: Viewer, client: ClientInfo, ip: IpAddr, resume: Option<i64>) -> Resolve {
        let pipeline = self.clone();
        Arc::new(move |request| {
            let (pipeline, client) = (pipeline.clone(), client.clone());
            Box::pin(async move {
                let caller =
                    Caller { viewer, client: &client, ip, request_id: None, trace: TraceContext::new_root(), resume };
                pipeline.execute_stream(request, &caller, None).collect().await
            })
        })
    }
}
