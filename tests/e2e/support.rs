//! Helpers: settings for the shipped modules, orders, a runtime per test.

use std::path::PathBuf;
use std::sync::LazyLock;

use fulfillment_host::model::{Order, OrderDocument};
use fulfillment_host::runtime::{LoadError, ModuleEngine, Runtime};
use fulfillment_host::settings::{ModuleCacheDir, Settings};
use fulfillment_tests::artifacts::module_path;
use fulfillment_tests::lms::{LmsApi, LmsStandIn, credentials_toml};
use serde_json::{Value, json};

pub const API_KEY: &str = "test-api-key";

/// A `[[modules]]` entry for the module built from crate `crate_name`.
pub fn module_entry(name: &str, crate_name: &str, allowed_hosts: &[&str], config: &[(&str, &str)]) -> String {
    let mut entry = format!(
        "[[modules]]\nname = {name:?}\npath = {:?}\nallowed_hosts = {:?}\n",
        module_path(crate_name).display().to_string(),
        allowed_hosts
    );
    entry.push_str("[modules.config]\n");
    for (key, value) in config {
        entry.push_str(&format!("{key} = {value:?}\n"));
    }
    entry
}

/// `entry` (from [`module_entry`]) with a `[modules.limits]` table; the
/// values are TOML (`("cpu_ms", "50")`).
pub fn with_limits(entry: String, limits: &[(&str, &str)]) -> String {
    let mut entry = entry;
    entry.push_str("[modules.limits]\n");
    for (key, value) in limits {
        entry.push_str(&format!("{key} = {value}\n"));
    }
    entry
}

/// The shipped modules in the reference order, calling the LMS at `lms_url`
/// with the credentials the host holds for them (the API key for
/// enrollment, OAuth2 client credentials for entitlements).
pub fn shipped_modules(lms_url: &str) -> String {
    let lms = [("lms_url", lms_url)];
    [
        with_credentials(module_entry("enrollment", "enrollment", &[lms_url], &lms), lms_url, LmsApi::Enrollment),
        module_entry("coupon", "coupon", &[], &[]),
        module_entry("enrollment-code", "enrollment-code", &[], &[("code_secret", "test-secret")]),
        with_credentials(
            module_entry("course-entitlement", "course-entitlement", &[lms_url], &lms),
            lms_url,
            LmsApi::Entitlements,
        ),
        module_entry("donation", "donation", &[], &[]),
    ]
    .join("\n")
}

/// `entry` with the host's credentials for `api` of the stand-in at
/// `lms_url` (secret files under the test target's scratch folder).
pub fn with_credentials(entry: String, lms_url: &str, api: LmsApi) -> String {
    let secrets = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("lms-secrets");
    format!("{entry}{}", credentials_toml(lms_url, api, API_KEY, &secrets))
}

/// Parses settings written as TOML (module paths are absolute). Without a
/// `[runtime]` section, the compiled-module cache is the test run's shared
/// one (never the user's own).
pub fn settings(toml: &str) -> Settings {
    let mut settings = Settings::parse(toml, &PathBuf::from("/test/settings.toml")).expect("test settings are valid");
    if !toml.contains("[runtime]") {
        settings.module_cache = ModuleCacheDir::At(fulfillment_tests::host_process::shared_module_cache_dir());
    }
    settings
}

/// A runtime with the modules of `toml`.
pub async fn runtime(toml: &str) -> Runtime {
    try_runtime(toml).await.expect("modules load")
}

/// One engine for the whole test binary: each module file is compiled once,
/// however many tests load it (each test still gets its own runtime, HTTP
/// client and stores), and kept in the test run's shared compiled-module
/// cache, so that the other test binaries and host processes load it from
/// there instead of compiling it again.
static ENGINE: LazyLock<ModuleEngine> = LazyLock::new(|| {
    ModuleEngine::build_cached(false, &ModuleCacheDir::At(fulfillment_tests::host_process::shared_module_cache_dir()))
        .expect("engine")
});

pub async fn try_runtime(toml: &str) -> Result<Runtime, LoadError> {
    Runtime::load_with(engine(), &settings(toml)).await
}

/// The test binary's shared engine.
pub fn engine() -> ModuleEngine {
    ENGINE.clone()
}

/// An LMS stand-in and a runtime with the shipped modules pointed at it.
pub async fn shipped() -> (LmsStandIn, Runtime) {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let runtime = runtime(&shipped_modules(&lms.url())).await;
    (lms, runtime)
}

/// A product line as JSON: `(id, product type, sku, attributes)`.
pub fn line(id: u64, product_type: &str, sku: &str, attributes: Value) -> Value {
    json!({
        "id": id,
        "unit_price": "10.00",
        "product": {"sku": sku, "product_type": product_type, "title": sku, "attributes": attributes},
    })
}

/// A seat in `course_key` in `mode`.
pub fn seat(id: u64, course_key: &str, mode: &str) -> Value {
    line(id, "Seat", &format!("SEAT-{id}"), json!({"course_key": course_key, "certificate_type": mode}))
}

/// An order of alice's with `lines`.
pub fn order(number: &str, lines: Vec<Value>) -> Order {
    let document = json!({
        "number": number,
        "user": {"username": "alice", "email": "alice@example.com"},
        "date_placed": "2026-11-29T12:00:00Z",
        "currency": "USD",
        "lines": lines,
    });
    OrderDocument::parse(&document.to_string()).expect("test order is valid")
}

/// The messages of the notes about line `line_id`.
pub fn notes_for(order: &Order, line_id: u64) -> Vec<String> {
    order
        .notes
        .iter()
        .filter(|note| note.line_id == Some(line_id))
        .map(|note| note.message.clone())
        .collect()
}

/// A loopback port with nothing listening on it.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
