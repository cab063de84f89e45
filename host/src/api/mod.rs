//! The HTTP API under `/api/v1` (axum): thin handlers over
//! [`Services`], one file per resource, one error shape for every answer
//! (also those made outside the handlers), bearer-token auth, limits on
//! the request's head and body, body and request time-outs.
//!
//! Start at [`router`]; `fulfillment-host serve` serves it (app.rs). The
//! router is built from the handlers' OpenAPI annotations (utoipa-axum), so
//! every route it serves is in the document.

mod auth;
mod error;
mod health;
mod json;
mod limits;
mod metrics;
mod modules;
mod openapi;
mod orders;
mod params;
mod products;
mod refunds;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::{Extension, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use auth::{Admin, Caller, authenticate, caller_by_digest, token_digest};
pub use error::ApiError;
pub use limits::HeadLimits;
pub use openapi::ApiDoc;
pub(crate) use orders::urlencode;

use crate::services::Services;
use crate::settings::{DashboardSettings, MetricsSettings, ServerSettings, TokenSettings};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub tokens: Arc<Vec<TokenSettings>>,
    pub dashboard: Arc<DashboardSettings>,
    /// Who besides an admin token may read `GET /metrics`.
    pub metrics_access: Arc<MetricsSettings>,
}

/// When a request must have its answer, a little before `[server]
/// request_timeout_ms` answers 503 for it: a handler that waits for work it
/// started (a checkout's charge, a fulfillment) stops waiting by then and
/// answers what it knows (202, or 503 `order_pending`) instead of the bare
/// time-out.
#[derive(Debug, Clone, Copy)]
pub struct AnswerDeadline(pub tokio::time::Instant);

impl AnswerDeadline {
    /// The deadline of a request that starts now, with `timeout`: 1 s (or a
    /// tenth of it, if shorter) before the time-out.
    fn starting_now(timeout: Duration) -> AnswerDeadline {
        let margin = (timeout / 10).min(Duration::from_secs(1));
        AnswerDeadline(tokio::time::Instant::now() + timeout - margin)
    }

    /// What is left until the deadline.
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(tokio::time::Instant::now())
    }

    /// Whether the deadline has come.
    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The result of `task` (started with `Executor::track`, so it goes on
    /// whatever happens to the request), or None when the deadline comes
    /// first.
    pub async fn result_of<T>(
        &self,
        task: tokio::task::JoinHandle<Result<T, crate::services::OrderError>>,
    ) -> Result<Option<T>, ApiError> {
        Ok(crate::services::by_deadline(task, self.0).await?)
    }
}

/// The routes and the OpenAPI document made from their annotations.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(orders::router())
        .merge(refunds::router())
        .merge(products::router())
        .merge(modules::router())
        .merge(openapi::router())
        .merge(health::router())
        .merge(metrics::router())
}

/// The OpenAPI document as served at `/api/v1/openapi.json`.
pub fn openapi_document() -> serde_json::Value {
    openapi::complete(routes().into_openapi())
}

/// The route of requests that matched no route (they are counted under
/// it, never under their raw path: a scanner would make a series per path).
const UNMATCHED_ROUTE: &str = "unmatched";

/// Counts the request in `fulfillment_http_requests_total` and its
/// duration, by its route template (axum's `MatchedPath`), method and the
/// answer's status.
async fn count_request(
    axum::extract::State(metrics): axum::extract::State<crate::metrics::Metrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|path| path.as_str().to_string());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
    metrics.http_request(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// The `method` label: a standard method's name, `other` for the rest (a
/// client may send any token as a method: one series each otherwise).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The whole API and the operator dashboard (`crate::dashboard`), with
/// their limits.
pub fn router(state: AppState, server: &ServerSettings) -> Router {
    let (router, document) = routes().split_for_parts();
    let router = router.merge(crate::dashboard::router());
    let limits = HeadLimits::of(server);
    let request_timeout = Duration::from_millis(server.request_timeout_ms);
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(Extension(openapi::Document::new(&openapi::complete(document))))
        .layer(RequestBodyLimitLayer::new(server.body_limit_bytes))
        // axum's own 2 MiB default would otherwise cap a larger setting.
        .layer(axum::extract::DefaultBodyLimit::max(server.body_limit_bytes))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_millis(server.body_read_timeout_ms.get())))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(server.request_timeout_ms),
        ))
        .layer(axum::middleware::from_fn(move |mut request: axum::extract::Request, next: axum::middleware::Next| {
            request.extensions_mut().insert(AnswerDeadline::starting_now(request_timeout));
            next.run(request)
        }))
        .layer(axum::middleware::from_fn(move |request, next| limits::enforce(limits, request, next)))
        // A handler that panics answers 500 in the error shape; the
        // connection and the host go on.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|payload: Box<dyn std::any::Any + Send>| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %message, "a request handler panicked");
            axum::response::IntoResponse::into_response(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the host's log",
            ))
        }))
        .layer(axum::middleware::from_fn(limits::error_shape))
        // Outermost: counts every answer as the client gets it.
        .layer(axum::middleware::from_fn_with_state(state.services.metrics.clone(), count_request))
        .with_state(state)
}
