//! The modules page: every `[[modules]]` entry, what it is, and how it is
//! doing since the host started.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::session::Staff;
use super::{DashboardError, render};
use crate::api::AppState;
use crate::runtime::LoadedModule;

/// A row of the modules table.
struct ModuleRow {
    name: String,
    /// running, disabled or failed.
    status: &'static str,
    /// Why it is not running.
    reason: String,
    module: String,
    version: String,
    /// The commerce:fulfillment version it is built against.
    contract: String,
    sha256: String,
    product_types: String,
    /// One limit a line.
    limits: Vec<String>,
    breaker: String,
    in_flight: String,
    calls: String,
    failures: String,
    traps: String,
    timeouts: String,
    p50: String,
    p99: String,
}

#[derive(Template)]
#[template(path = "dashboard/modules.html")]
struct ModulesPage {
    signed_in: Option<String>,
    csrf: String,
    rows: Vec<ModuleRow>,
}

/// `GET /dashboard/modules`: the running modules in dispatch order, then
/// those that are not running.
pub async fn page(State(state): State<AppState>, staff: Staff) -> Result<Response, DashboardError> {
    let runtime = state.services.runtime();
    let running = runtime.modules().iter().map(|module| running_row(module));
    let idle = runtime.disabled().iter().map(|module| ModuleRow {
        name: module.name.clone(),
        status: if module.load_failed { "failed" } else { "disabled" },
        reason: module.reason.clone(),
        module: String::new(),
        version: String::new(),
        contract: String::new(),
        sha256: String::new(),
        product_types: String::new(),
        limits: Vec::new(),
        breaker: String::new(),
        in_flight: String::new(),
        calls: String::new(),
        failures: String::new(),
        traps: String::new(),
        timeouts: String::new(),
        p50: String::new(),
        p99: String::new(),
    });
    let page = ModulesPage {
        signed_in: Some(staff.name().to_string()),
        csrf: staff.session.csrf.clone(),
        rows: running.chain(idle).collect(),
    };
    render(StatusCode::OK, &page)
}

fn running_row(module: &LoadedModule) -> ModuleRow {
    let limits = module.limits();
    let breaker = module.breaker().view();
    let stats = module.call_stats();
    let millis = |value: Option<f64>| value.map(|ms| format!("{ms:.1} ms")).unwrap_or_else(|| "–".to_string());
    ModuleRow {
        name: module.name().to_string(),
        status: "running",
        reason: String::new(),
        module: module.info().name.clone(),
        version: module.info().version.clone(),
        contract: module.contract_version().to_string(),
        sha256: module.digest().to_string(),
        product_types: module.info().product_types.join(", "),
        limits: vec![
            format!("CPU {} ms", limits.cpu_ms),
            format!("wall {} ms", limits.wall_ms),
            format!("memory {} MiB", limits.memory_bytes / (1024 * 1024)),
            format!("output {} KiB", limits.output_bytes.get() / 1024),
            format!("{} at once", limits.max_in_flight),
        ],
        breaker: match breaker.state {
            "closed" if breaker.failures_to_open == 0 => "off".to_string(),
            "closed" => format!("closed ({}/{})", breaker.consecutive_failures, breaker.failures_to_open),
            state => match breaker.probe_in_ms {
                Some(ms) => format!("{state} (probe in {} s)", ms.div_ceil(1000)),
                None => state.to_string(),
            },
        },
        in_flight: module.in_flight().to_string(),
        calls: stats.calls.to_string(),
        failures: stats.failures.to_string(),
        traps: stats.traps.to_string(),
        timeouts: stats.timeouts.to_string(),
        p50: millis(stats.p50_ms),
        p99: millis(stats.p99_ms),
    }
}

