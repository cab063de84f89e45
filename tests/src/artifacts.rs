//! Where the `.wasm` modules built by `cargo plugins` are.

use std::path::PathBuf;

/// The workspace root (the folder of the top Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The built component of the crate `crate_name` ("enrollment",
/// "course-entitlement", "misbehaving", "greedy", "cli-app", ...): the file
/// is named after the crate with `-` turned into `_`, as cargo names a
/// cdylib. (The one binary, the `cli-app` fixture, names its bin `cli_app`
/// to match.)
///
/// Panics with what to run when it is missing: the tests need the real
/// modules, built with `cargo plugins` (scripts/test runs it first).
pub fn module_path(crate_name: &str) -> PathBuf {
    let file = format!("{}.wasm", crate_name.replace('-', "_"));
    let path = workspace_root().join("target/wasm32-wasip2/plugin").join(file);
    assert!(
        path.exists(),
        "{} is missing: build the modules with `cargo plugins` (scripts/test does this before the tests)",
        path.display()
    );
    path
}

/// The built component of the JavaScript or Python example module `name`
/// ("gift-card", "subscription"), which scripts/build-components builds
/// with componentize-js and componentize-py (scripts/test runs it after
/// `cargo plugins`).
///
/// Panics with what to run when it is missing: the tests need the real
/// components, never a stand-in for them (nor a stale one: a build that
/// failed leaves none, not the previous one).
pub fn component_path(name: &str) -> PathBuf {
    let path = workspace_root().join("target/wasm32-wasip2/plugin").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the JavaScript and Python modules with `scripts/build-components` (scripts/test does this before the tests)",
        path.display()
    );
    path
}
