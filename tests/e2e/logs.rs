//! The log as JSON lines (`[logging] format = "json"`, `--log-format`), read
//! from a real `fulfillment-host serve` process (scripts/test builds the
//! binary first, with the whole workspace): every line is a JSON object,
//! and the lines of a fulfillment carry its `order` and `module`.

use std::time::Duration;

use fulfillment_tests::host_process::HostProcess;
use fulfillment_tests::lms::LmsStandIn;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{CHECKOUT_TOKEN, checkout, host_toml};
use crate::support::API_KEY;

/// A settings file of the test host (SQLite in `dir`) whose `[logging]`
/// format is `format`.
fn settings_file(dir: &std::path::Path, lms: &LmsStandIn, format: &str) -> std::path::PathBuf {
    let database = format!("sqlite://{}", dir.join("orders.db").display());
    let toml = host_toml(&lms.url(), &database, 4, &format!("[logging]\nformat = \"{format}\"\n"));
    let path = dir.join("settings.toml");
    std::fs::write(&path, toml).expect("settings written");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_order_and_module_of_a_fulfillment() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = settings_file(dir.path(), &lms, "json");
    let host = HostProcess::start_with_env(&settings, &["serve"], &[("RUST_LOG", "info")]);
    let url = host.url.clone().expect("serve listens");
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v1/orders"))
        .bearer_auth(CHECKOUT_TOKEN)
        .json(&checkout("59.00", "tok_success"))
        .send()
        .await
        .expect("the host answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("an order");
    let number = order["number"].as_str().expect("a number").to_string();
    let (status, lines) = host.terminate_and_read_log(Duration::from_secs(30));
    assert!(status.success(), "{status}: {lines:#?}");

    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}")))
        .collect();
    assert!(parsed.iter().all(|line| line["level"].is_string() && line["timestamp"].is_string()), "{lines:#?}");
    let about = |module: &str| {
        parsed
            .iter()
            .any(|line| line["message"] == "module call done" && line["order"] == number.as_str() && line["module"] == module)
    };
    assert!(about("enrollment") && about("donation"), "no `module call done` line with the order and module: {lines:#?}");
    assert!(
        parsed.iter().any(|line| line["message"] == "order dispatched" && line["order"] == number.as_str() && line["status"] == "Complete"),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_format_flag_wins_over_the_settings() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = settings_file(dir.path(), &lms, "json");
    let host = HostProcess::start_with_env(&settings, &["serve", "--log-format", "text"], &[("RUST_LOG", "info")]);
    // An answered request: the host serves (its SIGTERM handler is
    // installed before the banner since 47394ab; the request shows the
    // log's text lines for a request too).
    let url = host.url.clone().expect("serve listens");
    let health = reqwest::get(format!("{url}/healthz")).await.expect("the host answers");
    assert_eq!(health.status(), StatusCode::OK);
    let (status, lines) = host.terminate_and_read_log(Duration::from_secs(30));
    assert!(status.success(), "{status}: {lines:#?}");
    assert!(lines.iter().any(|line| line.starts_with("fulfillment-host listening on http://")), "{lines:#?}");
    assert!(lines.len() > 1, "the info lines are there too: {lines:#?}");
    assert!(lines.iter().all(|line| serde_json::from_str::<Value>(line).is_err()), "text lines only: {lines:#?}");
}

/// The "listening" banner of a JSON log reaches stderr whatever the filter
/// hides (it was a log line at INFO: `RUST_LOG=warn` hid where the host
/// listens, and the harness waited for it in vain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_log_says_where_it_listens_under_any_filter() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = settings_file(dir.path(), &lms, "json");
    let host = HostProcess::start_with_env(&settings, &["serve"], &[("RUST_LOG", "warn")]);
    let url = host.url.clone().expect("serve says where it listens");
    let health = reqwest::get(format!("{url}/healthz")).await.expect("the host answers");
    assert_eq!(health.status(), StatusCode::OK);
    let (status, lines) = host.terminate_and_read_log(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let banner = lines.iter().find(|line| line.contains("listening on")).expect("the banner");
    let banner: Value = serde_json::from_str(banner).expect("a JSON line");
    assert_eq!((banner["level"].as_str(), banner["address"].is_string()), (Some("INFO"), true), "{banner}");
}
