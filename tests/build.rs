//! Marks the build `no_postgres` when `FULFILLMENT_TEST_POSTGRES_URL` is not
//! set, so that the tests that need PostgreSQL are built `#[ignore]`d and
//! the test runner counts them as skipped ("ignored"), never as passed; and
//! `no_browser` when Debian's Chromium or chromedriver is missing (unless
//! `FULFILLMENT_REQUIRE_BROWSER=1`: then the browser tests run, and fail);
//! and `no_rust_template`, `no_js_template`, `no_python_template` when the
//! tool chain of that language's `fulfillment-host new` project cannot be
//! had (Rust: no wasm32-wasip2 target, or no python3 for the stand-in; JS:
//! no node or npm, or npm cannot get the pinned componentize-js; Python: no
//! python3 venv, or pip cannot get the pinned componentize-py), unless
//! `FULFILLMENT_REQUIRE_TEMPLATES=1`.

use std::path::Path;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rerun-if-env-changed=FULFILLMENT_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(no_postgres)");
    if std::env::var_os("FULFILLMENT_TEST_POSTGRES_URL").is_none_or(|url| url.is_empty()) {
        println!("cargo::rustc-cfg=no_postgres");
    }
    println!("cargo::rerun-if-env-changed=FULFILLMENT_REQUIRE_BROWSER");
    println!("cargo::rustc-check-cfg=cfg(no_browser)");
    let browser = ["/usr/bin/chromium", "/usr/bin/chromedriver"];
    for path in browser {
        println!("cargo::rerun-if-changed={path}");
    }
    let required = std::env::var_os("FULFILLMENT_REQUIRE_BROWSER").is_some_and(|value| value == "1");
    if !required && !browser.iter().all(|path| std::path::Path::new(path).exists()) {
        println!("cargo::rustc-cfg=no_browser");
    }
    template_toolchains();
}

/// Sets `no_<lang>_template` for each language whose project tool chain is
/// missing. The probes ask npm and pip for the versions the templates pin
/// (through their caches first), so a machine without the network but with
/// warm caches still runs the tests.
fn template_toolchains() {
    println!("cargo::rerun-if-env-changed=FULFILLMENT_REQUIRE_TEMPLATES");
    for lang in ["rust", "js", "python"] {
        println!("cargo::rustc-check-cfg=cfg(no_{lang}_template)");
    }
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/templates/new");
    let package_json = templates.join("js/package.json");
    let requirements = templates.join("python/requirements.txt");
    println!("cargo::rerun-if-changed={}", package_json.display());
    println!("cargo::rerun-if-changed={}", requirements.display());
    if std::env::var_os("FULFILLMENT_REQUIRE_TEMPLATES").is_some_and(|value| value == "1") {
        return;
    }
    // The Rust project's stand-in is a Python script.
    if !has_wasm32_wasip2() || !succeeds(Command::new("python3").arg("--version")) {
        println!("cargo::rustc-cfg=no_rust_template");
    }
    let componentize_js = pinned(&package_json, "\"@bytecodealliance/componentize-js\": \"", "\"");
    let js = componentize_js.is_some_and(|version| {
        succeeds(Command::new("node").arg("--version"))
            && succeeds(Command::new("npm").args(["view", "--prefer-offline"]).arg(format!(
                "@bytecodealliance/componentize-js@{version}"
            )).arg("version"))
    });
    if !js {
        println!("cargo::rustc-cfg=no_js_template");
    }
    let componentize_py = pinned(&requirements, "componentize-py==", "\n");
    let python = componentize_py.is_some_and(|version| {
        let probe = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("pip-probe");
        let found = succeeds(Command::new("python3").args(["-c", "import venv, ensurepip"]))
            && succeeds(
                Command::new("python3")
                    .args(["-m", "pip", "download", "--quiet", "--no-deps", "--dest"])
                    .arg(&probe)
                    .arg(format!("componentize-py=={version}")),
            );
        let _ = std::fs::remove_dir_all(&probe);
        found
    });
    if !python {
        println!("cargo::rustc-cfg=no_python_template");
    }
}

/// The text between `before` and `after` in the file at `path`.
fn pinned(path: &Path, before: &str, after: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let start = text.find(before)? + before.len();
    let end = text[start..].find(after)? + start;
    Some(text[start..end].trim().to_string())
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether rustc has the standard library for wasm32-wasip2.
fn has_wasm32_wasip2() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .is_some_and(|output| {
            let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
            Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2").is_dir()
        })
}
