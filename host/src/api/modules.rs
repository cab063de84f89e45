//! `/modules`: what the runtime loaded, what it could not, and how each
//! module is doing (limits, orders in flight, circuit breaker, calls since
//! start).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Admin, ApiError, AppState};
use crate::runtime::{BreakerView, CallStats, CredentialSummary, DisabledModule, LoadedModule};
use crate::settings::ModuleLimits;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_modules))
}

/// One `[[modules]]` entry of the settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModuleView {
    /// The operator's name (settings.toml).
    pub name: String,
    /// "running", "disabled" (`enabled = false`) or "failed" (it did not
    /// load and its `on_load_failure` is `disable`).
    #[schema(value_type = ModuleStatusName)]
    pub status: &'static str,
    /// Whether the module is being dispatched to.
    pub enabled: bool,
    /// Why it is not running.
    pub error: Option<String>,
    pub path: String,
    /// What the module calls itself (running modules).
    pub module: Option<String>,
    pub version: Option<String>,
    /// The version of `commerce:fulfillment` the module is built against
    /// ("1.0.0", "1.1.0"): the host serves each its own records.
    pub contract: Option<String>,
    pub sha256: Option<String>,
    /// The product types the module declared: it is offered only lines of
    /// these (its lane). `"*"` means every product type.
    pub product_types: Vec<String>,
    /// Whether the module declared the wildcard `"*"`: it is offered every
    /// line that no earlier module claimed.
    pub wildcard: bool,
    pub limits: Option<ModuleLimits>,
    /// The destinations the host authenticates the module's requests to,
    /// and how (`[modules.credentials]`); never a value.
    pub credentials: Vec<CredentialSummary>,
    /// Orders the module is working on now.
    pub in_flight: Option<usize>,
    pub circuit_breaker: Option<BreakerView>,
    /// The module's calls since the host started (running modules).
    pub calls: Option<CallStats>,
}

/// Whether a module runs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ModuleStatusName {
    Running,
    Disabled,
    Failed,
}

impl ModuleView {
    fn running(module: &LoadedModule) -> ModuleView {
        ModuleView {
            name: module.name().to_string(),
            status: "running",
            enabled: true,
            error: None,
            path: module.path().display().to_string(),
            module: Some(module.info().name.clone()),
            version: Some(module.info().version.clone()),
            contract: Some(module.contract_version().to_string()),
            sha256: Some(module.digest().to_string()),
            product_types: module.info().product_types.clone(),
            wildcard: module.info().is_wildcard(),
            limits: Some(module.limits().clone()),
            credentials: module.credentials(),
            in_flight: Some(module.in_flight()),
            circuit_breaker: Some(module.breaker().view()),
            calls: Some(module.call_stats()),
        }
    }

    fn disabled(module: &DisabledModule) -> ModuleView {
        ModuleView {
            name: module.name.clone(),
            status: if module.load_failed { "failed" } else { "disabled" },
            enabled: false,
            error: Some(module.reason.clone()),
            path: module.path.display().to_string(),
            module: None,
            version: None,
            contract: None,
            sha256: None,
            product_types: Vec::new(),
            wildcard: false,
            limits: None,
            credentials: Vec::new(),
            in_flight: None,
            circuit_breaker: None,
            calls: None,
        }
    }
}

/// The running modules in dispatch order, then those that are not running.
#[utoipa::path(get, path = "/api/v1/modules", tag = "modules",
    responses((status = 200, description = "Every [[modules]] entry", body = [ModuleView]),
        (status = 403, description = "Needs an admin token")),
    security(("bearer" = [])))]
async fn list_modules(State(state): State<AppState>, _admin: Admin) -> Result<Json<Vec<ModuleView>>, ApiError> {
    let runtime = state.services.runtime();
    let running = runtime.modules().iter().map(|module| ModuleView::running(module));
    let disabled = runtime.disabled().iter().map(ModuleView::disabled);
    Ok(Json(running.chain(disabled).collect()))
}
