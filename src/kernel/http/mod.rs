//! The HTTP transport: routes, middleware and the GraphQL endpoints.
//!
//! [`service`] is the whole HTTP service: the kernel's routes (GraphQL over HTTP, WebSocket
//! and SSE, the SDL, health and metrics) merged with the routes the concerns contribute, behind
//! the middleware. Middleware, outermost first: request context ([`observe`]: request id,
//! client info, tracing span, metrics, access log, and JSON errors for anything a layer below
//! answers without a JSON body: [`errors::ensure_json_errors`]), panic catching, CORS (an
//! `OPTIONS` request that is not a preflight goes to its route), response compression and
//! request decompression.

pub mod auth;
pub mod caching;
pub mod errors;
pub mod gate;
pub mod graphql;
pub mod health;
pub mod live;
pub mod observe;
pub mod wire;

use std::{convert::Infallible, sync::Arc};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderName, HeaderValue, Method, header},
    middleware,
    response::Response,
    routing::get,
};
use tower::{Service, ServiceBuilder};
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::{
        CompressionLayer,
        predicate::{DefaultPredicate, Predicate, SizeAbove},
    },
    cors::{AllowOrigin, CorsLayer},
    decompression::RequestDecompressionLayer,
};

use crate::kernel::{Kernel, graphql::pipeline::Pipeline, settings::CorsSettings};

/// State shared by every kernel handler.
#[derive(Clone)]
pub struct HttpState {
    /// The operation pipeline (the kernel's services and the concerns' hooks).
    pub pipeline: Pipeline,
    /// The schema in SDL, rendered once.
    pub sdl: Arc<str>,
}

impl HttpState {
    /// The kernel's services.
    pub fn kernel(&self) -> &Arc<Kernel> {
        self.pipeline.kernel()
    }
}

/// The kernel's routes merged with `concerns`' routes (each with its state applied). The API
/// is served at its versioned path `/v1/graphql` (and `/v1/graphql/ws`, `/v1/graphql/sse`,
/// `/v1/schema.graphql`) and at the unversioned aliases, the same handlers.
fn routes(state: HttpState, concerns: Router) -> Router {
    let mut router = Router::new();
    for prefix in ["", "/v1"] {
        router = router
            .route(&format!("{prefix}/graphql"), get(graphql::get_handler).post(graphql::post_handler))
            .route(&format!("{prefix}/graphql/ws"), get(live::ws::handler))
            .route(&format!("{prefix}/graphql/sse"), get(live::sse::get_handler).post(live::sse::post_handler))
            .route(&format!("{prefix}/schema.graphql"), get(health::schema_sdl));
    }
    router
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/.well-known/pins.json", get(health::pins))
        .with_state(state)
        .merge(concerns)
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
}

/// Builds the HTTP service: every route behind the middleware stack.
///
/// The middleware wraps the router once, outside it, rather than through `Router::layer`:
/// that would wrap every route in its own copy of the stack, each layer a boxed service that
/// axum clones, boxes and drops again on every request (about a fifth of the cost of a
/// `{ __typename }` request). Outermost first.
pub fn service(
    state: HttpState,
    concerns: Router,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static {
    let cors = cors_layer(&state.kernel().settings.cors);
    let min_compress = state.kernel().settings.compression.min_bytes;
    let router = routes(state.clone(), concerns);
    ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(state.clone(), observe::observe))
        .layer(CatchPanicLayer::custom(errors::panic_response as fn(_) -> _))
        .layer(middleware::from_fn_with_state(router.clone(), plain_options))
        .layer(cors)
        .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(SizeAbove::new(min_compress))))
        .layer(RequestDecompressionLayer::new())
        // The GraphQL transport enforces its own body limit, after decompression.
        .layer(DefaultBodyLimit::disable())
        .service(router)
}

/// Sends an `OPTIONS` request that is not a CORS preflight (no `Access-Control-Request-Method`)
/// to the routes instead of the CORS layer, which answers every `OPTIONS` itself: protocols
/// that discover capabilities with `OPTIONS` (tus) get their route's answer.
async fn plain_options(
    axum::extract::State(router): axum::extract::State<Router>,
    request: Request,
    next: middleware::Next,
) -> Response {
    if request.method() == Method::OPTIONS && !request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return match tower::ServiceExt::oneshot(router, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    next.run(request).await
}

fn cors_layer(settings: &CorsSettings) -> CorsLayer {
    let origins = if settings.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(settings.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let client_headers = [
        "x-app-version",
        "x-app-build",
        "x-platform",
        "x-os-version",
        "x-device-id",
        "x-timezone",
        "x-request-id",
        "last-event-id",
        // Resumable uploads (tus) and ranged media requests from browsers.
        "tus-resumable",
        "upload-length",
        "upload-offset",
        "upload-metadata",
        "upload-checksum",
        "x-http-method-override",
        "range",
        "if-none-match",
    ]
    .map(HeaderName::from_static);
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::OPTIONS,
            Method::HEAD,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers(
            [header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT_LANGUAGE, header::CONTENT_ENCODING]
                .into_iter()
                .chain(client_headers)
                .collect::<Vec<_>>(),
        )
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            gate::X_MIN_APP_VERSION,
            header::RETRY_AFTER,
            header::LOCATION,
            header::ETAG,
            header::CONTENT_RANGE,
            HeaderName::from_static("tus-resumable"),
            HeaderName::from_static("tus-version"),
            HeaderName::from_static("tus-extension"),
            HeaderName::from_static("tus-max-size"),
            HeaderName::from_static("upload-offset"),
            HeaderName::from_static("upload-length"),
            HeaderName::from_static("upload-expires"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}
