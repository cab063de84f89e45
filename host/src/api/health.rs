//! `/healthz` (the process answers) and `/readyz` (the database answers and
//! the modules are loaded; in async mode, the job queue by state).

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
    let database = state.service.database().ping().await;
    let modules = state.service.runtime().modules().len();
    let ready = database && modules > 0;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut body = json!({ "ready": ready, "database": database, "modules": modules });
    if state.service.is_async() {
        let jobs = state.service.job_counts().await.ok().map(|counts| {
            counts
                .into_iter()
                .map(|(job_state, count)| (job_state.as_str().to_string(), Value::from(count)))
                .collect::<serde_json::Map<_, _>>()
        });
        body["fulfillment"] = json!({ "mode": "async", "host": state.service.host_id(), "jobs": jobs });
    }
    (status, Json(body))
}
