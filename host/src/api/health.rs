//! `/healthz` (the process answers) and `/readyz` (the database answers and
//! the modules are loaded; the job queue by state).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
#[allow(dead_code)]
pub struct Health {
    /// Always "ok".
    #[schema(pattern = "^ok$")]
    pub status: String,
}

/// The answer of `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    /// The database answers and modules are loaded.
    pub ready: bool,
    pub database: bool,
    /// How many modules run.
    pub modules: usize,
    pub fulfillment: FulfillmentReadiness,
}

/// The fulfillment mode, this host and its job queue.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct FulfillmentReadiness {
    /// "sync" or "async".
    #[schema(pattern = "^(sync|async)$")]
    pub mode: String,
    /// This host's name in the job queue.
    pub host: String,
    /// The jobs by state; null when the queue could not be read.
    pub jobs: Option<BTreeMap<String, u64>>,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Value> {
    // Lets a process test make a handler panic (the host's fail points are
    // compiled in only for tests).
    fail::fail_point!("api-healthz-panic");
    Json(json!({ "status": "ok" }))
}

/// The database answers and the modules are loaded; the job queue by state.
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: the database does not answer, or no module runs", body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let services = &state.services;
    let database = services.db.ping().await;
    let modules = services.runtime().modules().len();
    let ready = database && modules > 0;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut body = json!({ "ready": ready, "database": database, "modules": modules });
    {
        let jobs = services.queue().counts().await.ok().map(|counts| {
            counts
                .into_iter()
                .map(|(job_state, count)| (job_state.as_str().to_string(), Value::from(count)))
                .collect::<serde_json::Map<_, _>>()
        });
        let mode = if services.is_async() { "async" } else { "sync" };
        body["fulfillment"] = json!({ "mode": mode, "host": services.queue().host_id(), "jobs": jobs });
    }
    (status, Json(body))
}
