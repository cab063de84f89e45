//! `fulfillment-host new`: the real binary writes a project per language,
//! and the project's own `./test.sh` builds its module with that language's
//! tool chain and runs it through `run-module` against its stand-in (the line
//! Complete, then Network Error with the stand-in down). A language whose tool
//! chain cannot be had here is built `#[ignore]`d (tests/build.rs), so it is
//! reported skipped, never passed.
//!
//! The tool chains' caches are reused: npm's and pip's own (componentize-js
//! and componentize-py are downloaded once per machine), and one
//! CARGO_TARGET_DIR under target/ for the Rust projects (wit-bindgen is built
//! once); and the test run's compiled-module cache under target/tmp. Run
//! with `cargo test -p fulfillment-tests --test templates` after `cargo build
//! -p fulfillment-host`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fulfillment_tests::artifacts::workspace_root;
use fulfillment_tests::host_process::{host_binary, shared_xdg_cache_home};

fn new_project(dir: &Path, args: &[&str]) -> Output {
    Command::new(host_binary())
        .arg("new")
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("XDG_CACHE_HOME", shared_xdg_cache_home())
        .output()
        .expect("fulfillment-host runs")
}

/// pip's cache as the user's environment has it: PIP_CACHE_DIR, else
/// `$XDG_CACHE_HOME/pip`, else `~/.cache/pip`.
fn pip_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PIP_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let cache_home = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache_home.join("pip")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes a `lang` project named `gift-cards` into a fresh folder, runs its
/// `./test.sh` with the host under test, and checks that both of its cases
/// passed.
fn project_passes_its_own_test(lang: &str, env: &[(&str, PathBuf)]) {
    let temp = tempfile::tempdir().expect("temp dir");
    let output = new_project(temp.path(), &["gift-cards", "--lang", lang, "--product-type", "Gift Card"]);
    assert!(output.status.success(), "new failed: {}", text(&output.stderr));
    let project = temp.path().join("gift-cards");
    let output = Command::new(project.join("test.sh"))
        .current_dir(&project)
        .env("FULFILLMENT_HOST", host_binary())
        .env_remove("RUST_LOG")
        // The test run's compiled-module cache: test.sh's second run-module
        // loads the module compiled by its first.
        .env("XDG_CACHE_HOME", shared_xdg_cache_home())
        // That would move pip's cache too (it lives under XDG_CACHE_HOME):
        // keep the user's.
        .env("PIP_CACHE_DIR", pip_cache_dir())
        // The outer cargo's flags are for the host target, not wasm32-wasip2.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .envs(env.iter().map(|(key, value)| (*key, value)))
        .output()
        .expect("test.sh runs");
    let stdout = text(&output.stdout);
    let report = format!("stdout:\n{stdout}\nstderr:\n{}", text(&output.stderr));
    assert!(output.status.success(), "test.sh of the {lang} project failed ({}):\n{report}", output.status);
    assert!(stdout.contains("ok: the line is Complete\n"), "{report}");
    assert!(stdout.contains("ok: with the service down, the line is Fulfillment Network Error\n"), "{report}");
    assert!(project.join("gift-cards.wasm").is_file(), "{report}");
}

#[test]
#[cfg_attr(no_rust_template, ignore = "needs the wasm32-wasip2 target (rustup target add wasm32-wasip2) and python3")]
fn a_new_rust_project_builds_and_passes_its_own_test() {
    let shared_target = workspace_root().join("target/template-projects/rust");
    project_passes_its_own_test("rust", &[("CARGO_TARGET_DIR", shared_target)]);
}

#[test]
#[cfg_attr(no_js_template, ignore = "needs node and npm, and npm able to get the pinned componentize-js")]
fn a_new_js_project_builds_and_passes_its_own_test() {
    project_passes_its_own_test("js", &[]);
}

#[test]
#[cfg_attr(no_python_template, ignore = "needs python3 with venv, and pip able to get the pinned componentize-py")]
fn a_new_python_project_builds_and_passes_its_own_test() {
    project_passes_its_own_test("python", &[]);
}

#[test]
fn new_refuses_a_bad_name_saying_what_is_wrong_and_writes_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("Gift_Cards", "invalid project name `Gift_Cards`: 'G' is not allowed: use lower-case letters, digits and `-` (try `gift-cards`)"),
        ("../up", "invalid project name `../up`: '.' is not allowed: use lower-case letters, digits and `-`"),
        ("9lives", "invalid project name `9lives`: it must start with a letter"),
    ];
    for (name, why) in cases {
        let output = new_project(temp.path(), &[name, "--lang", "python"]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        assert_eq!(text(&output.stderr).trim(), format!("error: {why}"));
    }
    let output = new_project(temp.path(), &["fn", "--lang", "rust"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cargo does not accept it as a package name"), "{}", text(&output.stderr));
    let output = new_project(temp.path(), &["cards", "--lang", "js", "--product-type", "*"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("`*` declares every product type"), "{}", text(&output.stderr));
    let left: Vec<_> = std::fs::read_dir(temp.path()).expect("read temp dir").collect();
    assert!(left.is_empty(), "a refused `new` wrote {left:?}");
}

#[test]
fn new_refuses_a_folder_that_is_not_empty_naming_it_and_leaves_it_alone() {
    let temp = tempfile::tempdir().expect("temp dir");
    let existing = temp.path().join("gift-cards");
    std::fs::create_dir(&existing).expect("create folder");
    std::fs::write(existing.join("notes.txt"), "mine").expect("write file");
    let output = new_project(temp.path(), &["gift-cards", "--lang", "rust"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr).trim(),
        "error: gift-cards already exists and is not empty: choose another NAME or --dir"
    );
    let mut names: Vec<_> = std::fs::read_dir(&existing)
        .expect("read folder")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["notes.txt"]);
    assert_eq!(std::fs::read_to_string(existing.join("notes.txt")).expect("read file"), "mine");

    // --dir names another folder: an empty one is fine.
    let elsewhere = temp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("create folder");
    let output = new_project(temp.path(), &["gift-cards", "--lang", "rust", "--dir", "elsewhere"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(elsewhere.join("Cargo.toml").is_file());
    assert!(text(&output.stdout).contains("next: cd elsewhere && ./test.sh"), "{}", text(&output.stdout));
    let output = new_project(temp.path(), &["gift-cards", "--lang", "rust", "--dir", "elsewhere/Cargo.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).ends_with("elsewhere/Cargo.toml already exists and is not a folder\n"), "{}", text(&output.stderr));
}

#[test]
fn the_project_holds_the_hosts_own_wit_and_a_sample_order_the_host_reads() {
    let temp = tempfile::tempdir().expect("temp dir");
    let output = new_project(temp.path(), &["cafe", "--lang", "js", "--product-type", "Café \"Spécial\""]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let project = temp.path().join("cafe");
    for wit in ["world.wit", "types.wit", "config.wit", "http.wit", "log.wit"] {
        let ours = std::fs::read_to_string(workspace_root().join("wit/1.1").join(wit)).expect("read wit");
        let theirs = std::fs::read_to_string(project.join("wit").join(wit)).expect("read project wit");
        assert_eq!(ours, theirs, "{wit}");
    }
    let order = std::fs::read_to_string(project.join("order.json")).expect("read order");
    let order = fulfillment_host::model::OrderDocument::parse(&order).expect("the host reads the sample order");
    assert_eq!(order.lines[0].product.product_type, "Café \"Spécial\"");
    let module = std::fs::read_to_string(project.join("src/module.js")).expect("read module");
    assert!(module.contains(r#"const PRODUCT_TYPE = "Café \"Spécial\"";"#), "{module}");
    for script in ["test.sh", "build.sh", "service-standin.mjs"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(project.join(script)).expect("stat").permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{script} is not executable");
    }
}
