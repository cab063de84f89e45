//! `/modules`: what the runtime loaded.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState, Caller};

pub fn router() -> Router<AppState> {
    Router::new().route("/modules", get(list_modules))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModuleView {
    /// The operator's name (settings.toml).
    pub name: String,
    /// What the module calls itself.
    pub module: String,
    pub version: String,
    pub sha256: String,
    pub product_types: Vec<String>,
    pub enabled: bool,
}

/// The loaded modules, in dispatch order.
#[utoipa::path(get, path = "/api/v1/modules", responses((status = 200, body = [ModuleView])), security(("bearer" = [])))]
async fn list_modules(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<ModuleView>>, ApiError> {
    caller.require_admin()?;
    let modules = state
        .service
        .runtime()
        .modules()
        .iter()
        .map(|module| ModuleView {
            name: module.name().to_string(),
            module: module.info().name.clone(),
            version: module.info().version.clone(),
            sha256: module.digest().to_string(),
            product_types: module.info().product_types.clone(),
            enabled: true,
        })
        .collect();
    Ok(Json(modules))
}
