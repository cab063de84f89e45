//! Settings and module files that must be refused, with a message that
//! names the file, the line, the key or the module.

use std::path::Path;

use fulfillment_host::settings::{ModuleLimits, Settings, Sha256Digest};
use fulfillment_tests::artifacts::module_path;

use crate::support;

/// The header of a component (layer 1) with nothing in it.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
/// The header of a core module with nothing in it.
const EMPTY_CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";

fn entry(name: &str, path: &Path, extra: &str) -> String {
    format!("[[modules]]\nname = {name:?}\npath = {:?}\n{extra}", path.display().to_string())
}

async fn load_error(toml: &str) -> String {
    match support::try_runtime(toml).await {
        Ok(_) => panic!("the module loaded, but should not have"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn a_sha256_pin_that_does_not_match_refuses_to_load() {
    let path = module_path("donation");
    let actual = Sha256Digest::of(&std::fs::read(&path).expect("read module"));
    let wrong = "0".repeat(64);
    let message = load_error(&entry("donation", &path, &format!("sha256 = {wrong:?}\n"))).await;
    assert_eq!(
        message,
        format!(
            "module `donation`: {} has sha256 {actual}, but settings.toml pins {wrong}; refusing to load it",
            path.display()
        )
    );
    let pinned = support::runtime(&entry("donation", &path, &format!("sha256 = \"{actual}\"\n"))).await;
    assert_eq!(pinned.modules()[0].digest(), actual);
}

#[tokio::test]
async fn files_that_are_not_fulfillment_components_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &[u8], &str); 3] = [
        ("text.wasm", b"this is not wasm", "is not a WebAssembly file"),
        ("core.wasm", EMPTY_CORE_MODULE, "is a core WebAssembly module, not a component"),
        (
            "empty.wasm",
            EMPTY_COMPONENT,
            "does not implement the world commerce:fulfillment/fulfillment-module@1.1.0: missing export(s) `describe`, `supports-lines`, `fulfill-product`, `revoke-line`",
        ),
    ];
    for (file, bytes, expected) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, bytes).expect("write file");
        let message = load_error(&entry("broken", &path, "")).await;
        assert!(message.starts_with(&format!("module `broken`: {}", path.display())), "{message}");
        assert!(message.contains(expected), "{file}: {message}");
    }
    let missing = dir.path().join("missing.wasm");
    let error = support::try_runtime(&entry("gone", &missing, "")).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "module `gone`: {} does not exist (the `path` of the module in /test/settings.toml, resolved against that file's folder)",
            missing.display()
        )
    );
}

#[tokio::test]
async fn a_disabled_module_is_not_loaded() {
    let toml = format!(
        "{}\n{}",
        entry("off", Path::new("/nonexistent.wasm"), "enabled = false\n"),
        entry("donation", &module_path("donation"), "")
    );
    let runtime = support::runtime(&toml).await;
    let names: Vec<_> = runtime.modules().iter().map(|module| module.name().to_string()).collect();
    assert_eq!(names, ["donation"]);
}

fn settings_error(toml: &str) -> String {
    Settings::parse(toml, Path::new("/etc/host/settings.toml"))
        .expect_err("the settings are refused")
        .to_string()
}

#[test]
fn settings_errors_name_the_file_the_line_and_the_key() {
    let unknown_key = settings_error("[[modules]]\nname = \"a\"\npath = \"a.wasm\"\nallowed_host = []\n");
    assert!(unknown_key.starts_with("invalid settings file /etc/host/settings.toml: TOML parse error at line 4"), "{unknown_key}");
    assert!(unknown_key.contains("unknown field `allowed_host`"), "{unknown_key}");

    let bad_host = settings_error("[[modules]]\nname = \"a\"\npath = \"a.wasm\"\nallowed_hosts = [\"ftp://x\"]\n");
    assert!(bad_host.contains("line 4"), "{bad_host}");
    assert!(bad_host.contains("invalid allowed host `ftp://x`: the scheme must be http or https"), "{bad_host}");

    let bad_name = settings_error("[[modules]]\nname = \"Bad Name\"\npath = \"a.wasm\"\n");
    assert!(bad_name.contains("line 2") && bad_name.contains("invalid module name `Bad Name`"), "{bad_name}");

    let missing_path = settings_error("[[modules]]\nname = \"a\"\n");
    assert!(missing_path.contains("missing field `path`"), "{missing_path}");

    let twice = settings_error("[[modules]]\nname = \"a\"\npath = \"a.wasm\"\n[[modules]]\nname = \"a\"\npath = \"b.wasm\"\n");
    assert_eq!(
        twice,
        "invalid settings file /etc/host/settings.toml: module name `a` is used by [[modules]] entries 1 and 2; names must be unique"
    );
}

#[test]
fn module_paths_are_relative_to_the_settings_file() {
    let settings = Settings::parse("[[modules]]\nname = \"a\"\npath = \"mods/a.wasm\"\n", Path::new("/etc/host/settings.toml"))
        .expect("valid");
    assert_eq!(settings.modules[0].path, Path::new("/etc/host/mods/a.wasm"));
    assert_eq!(settings.modules[0].limits, ModuleLimits::default());
    assert_eq!(settings.modules[0].limits.http_timeout_ms.get(), 7_000);
}

#[test]
fn limits_out_of_range_or_unknown_are_refused_by_key_and_line() {
    let error = |limits: &str| settings_error(&format!("[[modules]]\nname = \"a\"\npath = \"a.wasm\"\n[modules.limits]\n{limits}\n"));
    let huge = error("memory_bytes = 2147483648");
    assert!(huge.contains("line 5") && huge.contains("memory_bytes = 2147483648 is out of range"), "{huge}");
    let zero = error("cpu_ms = 0");
    assert!(zero.contains("line 5") && zero.contains("nonzero"), "{zero}");
    let unknown = error("cpu_seconds = 1");
    assert!(unknown.contains("unknown field `cpu_seconds`"), "{unknown}");
    let policy = settings_error("[[modules]]\nname = \"a\"\npath = \"a.wasm\"\non_load_failure = \"ignore\"\n");
    assert!(policy.contains("line 4") && policy.contains("unknown variant `ignore`"), "{policy}");
}

#[test]
fn the_default_settings_file_is_valid() {
    let path = fulfillment_tests::artifacts::workspace_root().join("settings.toml");
    let settings = Settings::load(&path).expect("settings.toml is valid");
    let names: Vec<_> = settings.modules.iter().map(|module| module.name.to_string()).collect();
    assert_eq!(names, ["enrollment", "coupon", "enrollment-code", "course-entitlement", "donation"]);
}

#[tokio::test]
async fn a_component_for_another_world_is_refused_naming_what_it_exports() {
    let path = module_path("cli-app");
    let message = load_error(&entry("cli", &path, "")).await;
    assert!(
        message.starts_with(&format!(
            "module `cli`: {} does not implement the world commerce:fulfillment/fulfillment-module@1.1.0: missing export(s) `describe`, `supports-lines`, `fulfill-product`, `revoke-line`; it exports `wasi:cli/run@0.2",
            path.display()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_component_importing_what_the_host_does_not_grant_is_refused() {
    let path = module_path("greedy");
    let message = load_error(&entry("greedy", &path, "")).await;
    assert!(message.starts_with(&format!("module `greedy`: {} does not fit the host:", path.display())), "{message}");
    assert!(message.contains("test:greedy/secrets"), "the import is named: {message}");
}

#[tokio::test]
async fn a_module_that_fails_to_load_with_on_load_failure_disable_is_left_out_visibly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("seats.wasm");
    std::fs::write(&broken, b"not wasm").expect("write file");
    let toml = format!(
        "{}\n{}",
        entry("seats", &broken, "on_load_failure = \"disable\"\n"),
        entry("donation", &module_path("donation"), "")
    );
    let runtime = support::runtime(&toml).await;
    let names: Vec<_> = runtime.modules().iter().map(|module| module.name().to_string()).collect();
    assert_eq!(names, ["donation"]);
    let disabled = &runtime.disabled()[0];
    assert_eq!((disabled.name.as_str(), disabled.load_failed), ("seats", true));
    assert_eq!(disabled.reason, format!("module `seats`: {} is not a WebAssembly file", broken.display()));

    let mut order = support::order(
        "EDX-400",
        vec![support::line(1, "Seat", "S1", serde_json::json!({})), support::line(2, "Donation", "D", serde_json::json!({}))],
    );
    fulfillment_host::dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.lines[0].status, fulfillment_host::model::LineStatus::ConfigurationError);
    assert_eq!(
        support::notes_for(&order, 1),
        ["No fulfillment module claimed line 1 (product type `Seat`, sku S1); no module declares product type `Seat`: considered donation (declares Donation); module seats is disabled because it failed to load"]
    );
    assert_eq!(order.lines[1].status, fulfillment_host::model::LineStatus::Complete);

    // Without the policy, the same file stops the load.
    let stop = format!("{}\n", entry("seats", &broken, ""));
    assert!(support::try_runtime(&stop).await.is_err());
}
