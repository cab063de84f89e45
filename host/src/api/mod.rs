//! The HTTP API under `/api/v1` (axum): thin handlers over
//! [`Services`], one file per resource, one error shape, bearer-token
//! auth, a body size limit and a request time-out.
//!
//! Start at [`router`]; `fulfillment-host serve` binds it.

mod auth;
mod error;
mod health;
mod json;
mod modules;
mod openapi;
mod orders;
mod products;
mod refunds;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use auth::{Caller, authenticate, token_digest};
pub use error::ApiError;
pub use openapi::ApiDoc;

use crate::services::Services;
use crate::settings::{ServerSettings, TokenSettings};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub tokens: Arc<Vec<TokenSettings>>,
}

/// The whole API, with its limits.
pub fn router(state: AppState, server: &ServerSettings) -> Router {
    let api = Router::new()
        .merge(orders::router())
        .merge(refunds::router())
        .merge(products::router())
        .merge(modules::router())
        .merge(openapi::router());
    Router::new()
        .nest("/api/v1", api)
        .merge(health::router())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(RequestBodyLimitLayer::new(server.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(server.request_timeout_ms),
        ))
        .with_state(state)
}
