//! `GET /metrics`: the host's metrics in the Prometheus text format, for a
//! Prometheus server to scrape (outside `/api/v1`, where scrapers look).
//!
//! Who may read them: an admin API token always; the scrape token of
//! `[metrics] token_sha256`; anyone when `[metrics] public = true`. No
//! token (or an unknown one) is 401, a checkout token 403.

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, authenticate};
use crate::settings::{Role, Sha256Digest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// The host's metrics: orders, payments, fulfillment and module calls,
/// circuit breakers, the job queue and HTTP requests (docs/api.md lists
/// them). For an admin token, the scrape token of `[metrics]
/// token_sha256`, or anyone with `[metrics] public = true`.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Every metric, in the Prometheus text format 0.0.4",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 403, description = "A checkout token (it may not read the metrics)")),
    security(("bearer" = [])))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    allowed(&state, &headers)?;
    let services = &state.services;
    match services.queue().counts().await {
        Ok(counts) => services.metrics.set_queue_depth(&counts),
        // The other metrics are still worth reading; the gauges keep what
        // the last scrape read.
        Err(error) => tracing::warn!(%error, "cannot read the job queue's depth for /metrics"),
    }
    let text = services.metrics.encode().map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the metrics could not be encoded")
    })?;
    Ok(([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}

/// Whether the request may read the metrics: 401 or 403 if not.
fn allowed(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.metrics_access.public {
        return Ok(());
    }
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|header| header.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    if state.metrics_access.token_sha256 == Some(Sha256Digest::of(token.as_bytes())) {
        return Ok(());
    }
    match authenticate(&state.tokens, token) {
        Some(caller) if caller.role == Role::Admin => Ok(()),
        Some(_) => Err(ApiError::forbidden("admin")),
        None => Err(ApiError::unauthorized()),
    }
}
