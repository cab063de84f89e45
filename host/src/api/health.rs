//! `/healthz` (the process answers) and `/readyz` (the database answers and
//! the modules are loaded; the job queue by state).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

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
