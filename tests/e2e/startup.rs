//! Start-up with the compiled-module cache, as an operator runs it: real
//! `fulfillment-host serve` processes with the shipped modules on one cache
//! folder. The first compiles every module and fills the folder; the second
//! loads every module from it and serves orders.

use std::time::Duration;

use fulfillment_tests::host_process::HostProcess;
use fulfillment_tests::lms::LmsStandIn;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{CHECKOUT_TOKEN, checkout, host_toml};
use crate::support::API_KEY;

const SHIPPED: [&str; 5] = ["enrollment", "coupon", "enrollment-code", "course-entitlement", "donation"];

/// Serves once: places an order, stops, and returns each module's
/// `origin` ("compiled" or "cached") from the `module ready` log lines.
async fn serve_once(settings: &std::path::Path) -> Vec<(String, String)> {
    let host = HostProcess::start_with_env(settings, &["serve"], &[("RUST_LOG", "info")]);
    let url = host.url.clone().expect("serve listens");
    let http = reqwest::Client::new();
    let ready = http.get(format!("{url}/readyz")).send().await.expect("the host answers");
    assert_eq!(ready.status(), StatusCode::OK);
    let placed = http
        .post(format!("{url}/api/v1/orders"))
        .bearer_auth(CHECKOUT_TOKEN)
        .json(&checkout("59.00", "tok_success"))
        .send()
        .await
        .expect("the host answers");
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.expect("an order");
    assert_eq!(order["status"], "Complete", "{order:#}");
    let (status, lines) = host.terminate_and_read_log(Duration::from_secs(30));
    assert!(status.success(), "{status}: {lines:#?}");
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"].as_str().is_some_and(|message| message.starts_with("module ready")))
        .map(|line| {
            (
                line["module"].as_str().unwrap_or_default().to_string(),
                line["origin"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_loads_every_shipped_module_from_the_cache_and_serves() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("module-cache");
    let database = format!("sqlite://{}", dir.path().join("orders.db").display());
    let extra = format!("[logging]\nformat = \"json\"\n[runtime]\nmodule_cache_dir = {:?}\n", cache.display().to_string());
    let settings = dir.path().join("settings.toml");
    std::fs::write(&settings, host_toml(&lms.url(), &database, 4, &extra)).expect("settings written");

    let expect = |origin: &str| -> Vec<(String, String)> {
        SHIPPED.iter().map(|module| (module.to_string(), origin.to_string())).collect()
    };
    assert_eq!(serve_once(&settings).await, expect("compiled"), "a cold start compiles");
    let entries = std::fs::read_dir(&cache).expect("the cache folder").count();
    assert_eq!(entries, SHIPPED.len(), "one entry a module, no temp file");
    assert_eq!(serve_once(&settings).await, expect("cached"), "a warm start loads from the cache");
}
