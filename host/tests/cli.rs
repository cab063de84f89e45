//! The `fulfillment-host` binary, run as operators and plugin authors run it.
//! Needs the modules built by `cargo plugins` (scripts/test builds them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn module(crate_name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/plugin")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(path.exists(), "{} is missing: run `cargo plugins` first", path.display());
    path
}

fn host(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fulfillment-host"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("fulfillment-host runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A folder with settings.toml (donation, then coupon) and order.json with a
/// donation, a coupon and a book nobody sells.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = format!(
        "[[modules]]\nname = \"donation\"\npath = {:?}\n\n[[modules]]\nname = \"coupon\"\npath = {:?}\n",
        module("donation").display().to_string(),
        module("coupon").display().to_string(),
    );
    std::fs::write(dir.path().join("settings.toml"), settings).expect("write settings");
    let order = r#"{
        "number": "EDX-900", "currency": "USD", "total": "35.00",
        "user": {"username": "bob", "email": "bob@example.com"},
        "lines": [
            {"id": 1, "unit_price": "20.00", "product": {"sku": "DON", "product_type": "Donation"}},
            {"id": 2, "unit_price": "5.00", "product": {"sku": "CPN", "product_type": "Coupon"}},
            {"id": 3, "unit_price": "10.00", "product": {"sku": "BOOK", "product_type": "Book"}}
        ]
    }"#;
    std::fs::write(dir.path().join("order.json"), order).expect("write order");
    dir
}

#[test]
fn check_describes_a_module_and_lists_its_imports() {
    let dir = workspace();
    let wasm = module("enrollment");
    let output = host(&["check", wasm.to_str().expect("utf-8 path")], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("implements commerce:fulfillment/fulfillment-module@1.0.0"), "{text}");
    assert!(text.contains("name:          enrollment"), "{text}");
    assert!(text.contains("product types: Seat"), "{text}");
    assert!(text.contains("commerce:fulfillment/http@1.0.0"), "{text}");
}

#[test]
fn check_refuses_a_file_that_is_not_a_component_and_says_why() {
    let dir = workspace();
    std::fs::write(dir.path().join("notes.wasm"), "hello").expect("write file");
    let output = host(&["check", "notes.wasm"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr(&output).trim(), "error: module `notes`: notes.wasm is not a WebAssembly file");
}

#[test]
fn dispatch_prints_each_lines_module_status_and_note() {
    let dir = workspace();
    let output = host(&["dispatch", "--order", "order.json"], dir.path());
    assert_eq!(output.status.code(), Some(3), "a Fulfillment Error order exits 3: {}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("order EDX-900: Fulfillment Error"), "{text}");
    assert!(text.contains("DON"), "{text}");
    let book = text.lines().find(|line| line.contains("BOOK")).expect("a row for the book");
    assert!(book.contains("Fulfillment Configuration Error"), "{book}");
    assert!(text.contains("[Error] line 3: No fulfillment module claimed line 3 (product type `Book`, sku BOOK)"), "{text}");
}

#[test]
fn dispatch_json_is_the_order_and_the_report() {
    let dir = workspace();
    let output = host(&["dispatch", "--order", "order.json", "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(json["order"]["status"], "Fulfillment Error");
    assert_eq!(json["order"]["total"], "35.00");
    assert_eq!(json["order"]["lines"][0]["fulfilled_by"], "donation");
    assert_eq!(json["order"]["lines"][1]["status"], "Complete");
    assert_eq!(json["report"]["calls"][0]["call"], "supports-line");
}

#[test]
fn dispatch_dry_run_only_says_who_would_claim() {
    let dir = workspace();
    let output = host(&["dispatch", "--order", "order.json", "--dry-run"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let row = |sku: &str| text.lines().find(|line| line.contains(sku)).map(str::to_string).unwrap_or_default();
    assert!(row("DON").ends_with("donation"), "{text}");
    assert!(row("CPN").ends_with("coupon"), "{text}");
    assert!(row("BOOK").ends_with("(no module: Fulfillment Configuration Error)"), "{text}");
}

#[test]
fn run_module_runs_one_module_alone_with_config_from_the_command_line() {
    let dir = workspace();
    let wasm = module("enrollment-code");
    let order = r#"{"number": "EDX-901", "currency": "USD", "user": {"username": "b", "email": "b@x"},
        "lines": [{"id": 7, "quantity": 2, "unit_price": "1.00", "product": {"sku": "C", "product_type": "Enrollment Code"}}]}"#;
    std::fs::write(dir.path().join("codes.json"), order).expect("write order");
    let wasm = wasm.to_str().expect("utf-8 path");
    let without = host(&["run-module", wasm, "--order", "codes.json"], dir.path());
    assert_eq!(without.status.code(), Some(3));
    assert!(stdout(&without).contains("config key `code_secret` is not set"), "{}", stdout(&without));

    let output = host(&["run-module", wasm, "--order", "codes.json", "--config", "code_secret=s3cret", "--json"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    let codes = json["order"]["lines"][0]["attributes"]["voucher_codes"].as_str().expect("codes");
    assert_eq!(codes.split(',').count(), 2);
    let calls = json["report"]["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2, "supports-line and fulfill-product, timed: {calls:?}");
    assert!(calls[1]["elapsed_ms"].as_f64().is_some());
}

#[test]
fn modules_lists_the_enabled_modules_in_order() {
    let dir = workspace();
    let output = host(&["modules", "--json"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    let names: Vec<_> = json.as_array().expect("a list").iter().map(|m| m["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["donation", "coupon"]);
    assert_eq!(json[0]["product_types"][0], "Donation");
    assert_eq!(json[0]["sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn a_broken_settings_file_is_reported_with_its_path_and_line() {
    let dir = workspace();
    std::fs::write(dir.path().join("bad.toml"), "[[modules]]\nname = \"x\"\npath = \"x.wasm\"\ncolour = 1\n")
        .expect("write settings");
    let output = host(&["--settings", "bad.toml", "modules"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.starts_with("error: invalid settings file bad.toml: TOML parse error at line 4"), "{text}");
    assert!(text.contains("unknown field `colour`"), "{text}");
}
