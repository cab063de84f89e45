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

/// Where the commands keep compiled modules when their settings do not say
/// (`$XDG_CACHE_HOME/fulfillment-host/modules`): one folder for the whole
/// run, so that each module compiles once, and never the user's own cache.
fn shared_xdg_cache_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache")
}

fn host(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fulfillment-host"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("XDG_CACHE_HOME", shared_xdg_cache_home())
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
    assert!(text.contains("implements commerce:fulfillment/fulfillment-module@1.1.0"), "{text}");
    assert!(text.contains("name:          enrollment"), "{text}");
    assert!(text.contains("product types: Seat"), "{text}");
    assert!(text.contains("claims with:   supports-lines (once per order)"), "{text}");
    assert!(text.contains("commerce:fulfillment/http@1.1.0"), "{text}");
}

#[test]
fn check_tells_a_module_built_against_wit_1_0() {
    let dir = workspace();
    let wasm = module("legacy_v1_0");
    let output = host(&["check", wasm.to_str().expect("utf-8 path")], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("implements commerce:fulfillment/fulfillment-module@1.0.0"), "{text}");
    assert!(text.contains("claims with:   supports-line (once per line;"), "{text}");
    assert!(text.contains("commerce:fulfillment/config@1.0.0"), "{text}");
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
    assert!(
        text.contains("[Error] line 3: No fulfillment module claimed line 3 (product type `Book`, sku BOOK); no module declares product type `Book`: considered donation (declares Donation), coupon (declares Coupon)"),
        "{text}"
    );
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
    assert_eq!(json["report"]["calls"][0]["call"], "supports-lines");
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
    assert!(row("BOOK").ends_with("(no module declares its product type: Fulfillment Configuration Error)"), "{text}");

    let output = host(&["dispatch", "--order", "order.json", "--dry-run", "--json"], dir.path());
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(plan[0]["offered_to"], serde_json::json!(["donation"]), "{plan}");
    assert_eq!(plan[2]["offered_to"], serde_json::json!([]), "{plan}");
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

/// Runs `args` with a settings file listing the misbehaving fixture as
/// `config` and `limits` say, and an order of two seats.
fn misbehaving(dir: &Path, config: &str, limits: &str, args: &[&str]) -> Output {
    let settings = format!(
        "[[modules]]\nname = \"misbehaving\"\npath = {:?}\n[modules.config]\n{config}\n[modules.limits]\n{limits}\n",
        module("misbehaving").display().to_string(),
    );
    std::fs::write(dir.join("fixture.toml"), settings).expect("write settings");
    let order = r#"{"number": "EDX-902", "currency": "USD", "user": {"username": "b", "email": "b@x"},
        "lines": [{"id": 1, "unit_price": "1.00", "product": {"sku": "S1", "product_type": "Seat"}},
                  {"id": 2, "unit_price": "1.00", "product": {"sku": "S2", "product_type": "Seat"}}]}"#;
    std::fs::write(dir.join("seats.json"), order).expect("write order");
    let mut all = vec!["--settings", "fixture.toml"];
    all.extend_from_slice(args);
    host(&all, dir)
}

/// What a module writes (notes, attributes, messages, log lines) reaches the
/// terminal with its control characters escaped: no fake line, no ESC, no NUL.
#[test]
fn module_text_reaches_the_terminal_escaped_and_its_log_lines_show() {
    let dir = workspace();
    let wasm = module("misbehaving");
    let wasm = wasm.to_str().expect("utf-8 path");
    for command in [vec!["run-module", wasm, "--order", "seats.json"], vec!["dispatch", "--order", "seats.json"]] {
        let output = misbehaving(dir.path(), "claim = \"Seat\"\nbehaviour = \"hostile-text\"", "", &command);
        assert_eq!(output.status.code(), Some(3), "line 1 fails: {}", stderr(&output));
        for (stream, text) in [("stdout", stdout(&output)), ("stderr", stderr(&output))] {
            assert!(!text.contains('\x1b') && !text.contains('\0') && !text.contains('\r'), "{command:?} {stream}: {text:?}");
            let forged: Vec<_> = text.lines().filter(|line| line.trim_start().starts_with("FORGED")).collect();
            assert!(forged.is_empty(), "{command:?} {stream} has lines the module made up: {forged:?}\n{text}");
        }
        let out = stdout(&output);
        assert!(out.contains("failure text\\nFORGED line\\u{1b}[2J\\0after NUL"), "{out}");
        assert!(out.contains("name text\\nFORGED line"), "{out}");
        assert!(out.contains("note text\\nFORGED line"), "{out}");
    }
    // run-module shows the module's log lines without -v, one log line each.
    let output = misbehaving(dir.path(), "claim = \"Seat\"\nbehaviour = \"hostile-text\"", "", &["run-module", wasm, "--order", "seats.json"]);
    let err = stderr(&output);
    assert!(err.contains("first message\\nFORGED host log line"), "{err}");
    assert!(err.contains("\\u{1b}[2Jcleared the screen"), "{err}");
    assert!(err.contains("nul\\0byte\\r\\nFORGED after CRLF"), "{err}");
}

/// Logs are plain text off a terminal (here a pipe), and a module file that
/// does not exist is named once, resolved, with the settings file.
#[test]
fn logs_off_a_terminal_have_no_colours_and_a_missing_module_names_its_settings_file() {
    let dir = workspace();
    std::fs::write(dir.path().join("missing.toml"), "[[modules]]\nname = \"x\"\npath = \"nothere/x.wasm\"\non_load_failure = \"disable\"\n")
        .expect("write settings");
    let output = host(&["--settings", "missing.toml", "modules"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("module disabled"), "the load failure is logged: {err}");
    assert!(!err.contains('\x1b'), "no ANSI colours in a log that is not a terminal: {err:?}");

    std::fs::write(dir.path().join("stop.toml"), "[[modules]]\nname = \"x\"\npath = \"nothere/x.wasm\"\n").expect("write settings");
    let output = host(&["--settings", "stop.toml", "modules"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim(),
        format!(
            "error: module `x`: {} does not exist (the `path` of the module in stop.toml, resolved against that file's folder)",
            dir.path().join("nothere/x.wasm").display()
        )
    );
}

#[test]
fn modules_prints_the_full_sha256_and_marks_a_wildcard_module() {
    let dir = workspace();
    let output = misbehaving(dir.path(), "claim = \"*\"", "", &["modules"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let digest = hex_sha256(&module("misbehaving"));
    let row = text.lines().find(|line| line.starts_with("misbehaving")).expect("a row");
    assert!(row.contains(&digest), "the full sha256 {digest}: {text}");
    assert!(row.contains("* (every product type)"), "{text}");

    let output = misbehaving(dir.path(), "claim = \"*\"", "", &["modules", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(json[0]["wildcard"], true);
    assert_eq!(json[0]["product_types"], serde_json::json!(["*"]));
    let output = host(&["modules", "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(json[0]["wildcard"], false);
}

fn hex_sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read module")))
}

/// `check X.wasm | head -c1`: the reader is gone before the output is
/// written; the command ends without a panic.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let dir = workspace();
    let wasm = module("enrollment");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_fulfillment-host"))
        .args(["check", wasm.to_str().expect("utf-8 path")])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(writer)
        .output()
        .expect("fulfillment-host runs");
    let err = stderr(&output);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(output.status.code(), Some(0), "{err}");
}

/// `run-module` gives the module its `limits.fuel` budget, as `dispatch` does.
#[test]
fn run_module_honours_limits_fuel() {
    let dir = workspace();
    let wasm = module("misbehaving");
    let output = misbehaving(
        dir.path(),
        "claim = \"Seat\"\nbehaviour = \"loop\"",
        "fuel = 1000000",
        &["run-module", wasm.to_str().expect("utf-8 path"), "--order", "seats.json"],
    );
    assert_eq!(output.status.code(), Some(3), "the loop runs out of fuel: {}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("exceeded its fuel budget of 1000000 for one call (fuel)"), "{text}");
}

/// The scripts stop only the processes they started, by pid, never by name.
#[test]
fn scripts_never_stop_processes_by_name() {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    for entry in std::fs::read_dir(&scripts).expect("scripts/") {
        let path = entry.expect("an entry").path();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for word in ["pkill", "killall"] {
            assert!(!text.contains(word), "{} uses {word}", path.display());
        }
    }
}

/// Settings whose enrollment module authenticates to an LMS with an API
/// key the host reads from `LMS_API_KEY`.
fn credentials_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = format!(
        "[[modules]]\nname = \"enrollment\"\npath = {:?}\nallowed_hosts = [\"https://lms.example.com\"]\n\
         [modules.config]\nlms_url = \"https://lms.example.com\"\n\
         [modules.credentials.\"https://lms.example.com\"]\nkind = \"header\"\nheader = \"X-Edx-Api-Key\"\nsecret = {{ env = \"LMS_API_KEY\" }}\n",
        module("enrollment").display().to_string(),
    );
    std::fs::write(dir.path().join("settings.toml"), settings).expect("write settings");
    dir
}

#[test]
fn modules_shows_where_the_host_authenticates_but_never_the_secret() {
    let dir = credentials_workspace();
    let output = Command::new(env!("CARGO_BIN_EXE_fulfillment-host"))
        .args(["-v", "modules"])
        .current_dir(dir.path())
        .env("LMS_API_KEY", "very-secret-lms-key")
        .output()
        .expect("fulfillment-host runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("enrollment           authenticates to https://lms.example.com:443 with header X-Edx-Api-Key (held by the host)"),
        "{}",
        stdout(&output)
    );
    assert!(!stdout(&output).contains("very-secret") && !stderr(&output).contains("very-secret"));

    let json = Command::new(env!("CARGO_BIN_EXE_fulfillment-host"))
        .args(["modules", "--json"])
        .current_dir(dir.path())
        .env("LMS_API_KEY", "very-secret-lms-key")
        .output()
        .expect("fulfillment-host runs");
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(
        rows[0]["credentials"],
        serde_json::json!([{"destination": "https://lms.example.com:443", "kind": "header X-Edx-Api-Key"}])
    );
}

#[test]
fn an_unset_secret_variable_stops_the_host_naming_module_destination_and_variable() {
    let dir = credentials_workspace();
    let output = Command::new(env!("CARGO_BIN_EXE_fulfillment-host"))
        .args(["modules"])
        .current_dir(dir.path())
        .env_remove("LMS_API_KEY")
        .output()
        .expect("fulfillment-host runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "module `enrollment`, credentials for https://lms.example.com:443: secret: environment variable `LMS_API_KEY` is not set"
        ),
        "{}",
        stderr(&output)
    );
}

/// A folder with settings.toml naming donation (and a fuel-metered coupon
/// when `fuel`), its compiled-module cache in `cache/`.
fn cache_workspace(fuel: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = format!(
        "[runtime]\nmodule_cache_dir = \"cache\"\n\n[[modules]]\nname = \"donation\"\npath = {:?}\n",
        module("donation").display().to_string(),
    );
    if fuel {
        settings.push_str(&format!(
            "\n[[modules]]\nname = \"coupon\"\npath = {:?}\n[modules.limits]\nfuel = 100000000\n",
            module("coupon").display().to_string()
        ));
    }
    std::fs::write(dir.path().join("settings.toml"), settings).expect("write settings");
    dir
}

/// `check` of `crate_name` in `dir`; asserts that it describes the module
/// (the module runs), and returns stdout and stderr.
fn check_runs(dir: &Path, crate_name: &str) -> (String, String) {
    let wasm = module(crate_name);
    let output = host(&["check", wasm.to_str().expect("utf-8 path")], dir);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&format!("name:          {crate_name}")), "describe ran: {text}");
    (text, stderr(&output))
}

/// The cache's entries and other files, by name.
fn cache_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("cache"))
        .expect("the cache folder exists")
        .map(|item| item.expect("item").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The one entry of the cache whose name starts with the module's digest.
fn entry_of(dir: &Path, crate_name: &str) -> PathBuf {
    let digest = hex_sha256(&module(crate_name));
    let entries: Vec<String> = cache_files(dir).into_iter().filter(|name| name.starts_with(&digest)).collect();
    assert_eq!(entries.len(), 1, "one entry for {crate_name}: {entries:?}");
    dir.join("cache").join(&entries[0])
}

#[test]
fn a_second_check_loads_the_module_from_the_cache_and_says_so() {
    let dir = cache_workspace(false);
    let (first, _) = check_runs(dir.path(), "donation");
    assert!(first.contains("loaded:        compiled in "), "{first}");
    assert!(first.contains(&format!("(cache: {})", dir.path().join("cache").display())), "{first}");
    let files = cache_files(dir.path());
    assert_eq!(files.len(), 1, "one entry and no temp file: {files:?}");
    assert!(files[0].ends_with(".cwasm"), "{files:?}");

    let (second, errors) = check_runs(dir.path(), "donation");
    assert!(second.contains("loaded:        loaded from the compile cache in "), "{second}");
    assert!(errors.is_empty(), "no warning: {errors}");

    // The cached module runs a real order, too.
    std::fs::write(
        dir.path().join("order.json"),
        r#"{"number": "EDX-1", "currency": "USD", "total": "20.00", "user": {"username": "bob", "email": "bob@example.com"},
            "lines": [{"id": 1, "unit_price": "20.00", "product": {"sku": "DON", "product_type": "Donation"}}]}"#,
    )
    .expect("write order");
    let wasm = module("donation");
    let output = host(&["run-module", wasm.to_str().expect("utf-8"), "--order", "order.json"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("Complete"), "{}", stdout(&output));
}

/// Replaces the donation entry with `bytes`, then checks that `check`
/// warns (naming the file and `why`), compiles, rewrites the entry, and that
/// the next `check` loads it from the cache.
fn bad_entry_is_rebuilt(dir: &Path, bytes: &[u8], why: &str) {
    let entry = entry_of(dir, "donation");
    std::fs::write(&entry, bytes).expect("write the bad entry");
    let (text, errors) = check_runs(dir, "donation");
    assert!(text.contains("loaded:        compiled in "), "{text}");
    assert!(errors.contains("ignoring a compiled-module cache entry"), "{errors}");
    assert!(errors.contains(&entry.display().to_string()), "names the file: {errors}");
    assert!(errors.contains(why), "says why ({why}): {errors}");
    let (text, errors) = check_runs(dir, "donation");
    assert!(text.contains("loaded from the compile cache"), "rebuilt: {text}");
    assert!(errors.is_empty(), "{errors}");
}

#[test]
fn a_corrupt_or_truncated_cache_entry_is_ignored_with_a_warning_and_rebuilt() {
    let dir = cache_workspace(false);
    check_runs(dir.path(), "donation");
    let good = std::fs::read(entry_of(dir.path(), "donation")).expect("entry");

    let mut corrupt = good.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    bad_entry_is_rebuilt(dir.path(), &corrupt, "checksum does not match");
    bad_entry_is_rebuilt(dir.path(), &good[..good.len() - 100], "truncated");
    bad_entry_is_rebuilt(dir.path(), b"junk", "truncated");
    bad_entry_is_rebuilt(dir.path(), &vec![7u8; good.len()], "not an entry of this cache");
}

#[test]
fn another_modules_entry_renamed_to_this_key_is_ignored_and_rebuilt() {
    let dir = cache_workspace(false);
    check_runs(dir.path(), "donation");
    check_runs(dir.path(), "coupon");
    let coupon = std::fs::read(entry_of(dir.path(), "coupon")).expect("entry");
    bad_entry_is_rebuilt(dir.path(), &coupon, "holds another module");
}

#[test]
fn an_entry_of_an_engine_with_fuel_metering_is_not_used_by_one_without() {
    // coupon has a fuel budget in the settings: `check` builds a metering
    // engine for it, whose entries have another key.
    let dir = cache_workspace(true);
    check_runs(dir.path(), "coupon");
    let (second, _) = check_runs(dir.path(), "coupon");
    assert!(second.contains("loaded from the compile cache"), "{second}");
    let fueled = entry_of(dir.path(), "coupon");
    let fueled_bytes = std::fs::read(&fueled).expect("entry");

    // The same file without fuel: compiled, a second entry beside the first.
    let plain_dir = cache_workspace(false);
    check_runs(plain_dir.path(), "coupon");
    let plain = entry_of(plain_dir.path(), "coupon");
    assert_ne!(plain.file_name(), fueled.file_name(), "fuel metering changes the engine hash");
    // The metering engine's entry put under the plain engine's key.
    std::fs::write(&plain, &fueled_bytes).expect("write");
    let (text, errors) = check_runs(plain_dir.path(), "coupon");
    assert!(text.contains("compiled in "), "{text}");
    assert!(errors.contains("compiled by another engine"), "{errors}");
    let (text, _) = check_runs(plain_dir.path(), "coupon");
    assert!(text.contains("loaded from the compile cache"), "{text}");
}

#[test]
fn a_cache_folder_that_cannot_be_created_or_is_open_to_others_warns_and_the_module_still_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a-file"), "not a folder").expect("write");
    let settings = format!(
        "[runtime]\nmodule_cache_dir = \"a-file/modules\"\n\n[[modules]]\nname = \"donation\"\npath = {:?}\n",
        module("donation").display().to_string()
    );
    std::fs::write(dir.path().join("settings.toml"), settings).expect("write settings");
    let (text, errors) = check_runs(dir.path(), "donation");
    assert!(text.contains("compiled in ") && text.contains("(no compile cache)"), "{text}");
    assert!(errors.contains("the compiled-module cache folder cannot be used"), "{errors}");
    assert_eq!(errors.matches("cannot be used").count(), 1, "warned once: {errors}");

    use std::os::unix::fs::PermissionsExt;
    let open = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(open.path().join("cache")).expect("mkdir");
    std::fs::set_permissions(open.path().join("cache"), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let settings = format!(
        "[runtime]\nmodule_cache_dir = \"cache\"\n\n[[modules]]\nname = \"donation\"\npath = {:?}\n",
        module("donation").display().to_string()
    );
    std::fs::write(open.path().join("settings.toml"), settings).expect("write settings");
    let (text, errors) = check_runs(open.path(), "donation");
    assert!(text.contains("(no compile cache)"), "{text}");
    assert!(errors.contains("the group or others may write it"), "{errors}");
    assert!(cache_files(open.path()).is_empty(), "nothing written to a folder others can write");
}

#[test]
fn module_cache_false_turns_the_cache_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = format!(
        "[runtime]\nmodule_cache = false\nmodule_cache_dir = \"cache\"\n\n[[modules]]\nname = \"donation\"\npath = {:?}\n",
        module("donation").display().to_string()
    );
    std::fs::write(dir.path().join("settings.toml"), settings).expect("write settings");
    let (text, _) = check_runs(dir.path(), "donation");
    assert!(text.contains("(no compile cache)"), "{text}");
    assert!(!dir.path().join("cache").exists());
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the host built with --features failpoints")]
fn a_crash_before_the_rename_leaves_no_entry_that_is_used() {
    let dir = cache_workspace(false);
    let wasm = module("donation");
    let crashed = Command::new(env!("CARGO_BIN_EXE_fulfillment-host"))
        .args(["check", wasm.to_str().expect("utf-8")])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("XDG_CACHE_HOME", shared_xdg_cache_home())
        .env("FAILPOINTS", "compile-cache-before-rename=return")
        .output()
        .expect("runs");
    assert!(!crashed.status.success(), "the fail point aborts the process");
    let files = cache_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(".tmp-"), "only the temporary file of the cut write: {files:?}");

    let (text, errors) = check_runs(dir.path(), "donation");
    assert!(text.contains("compiled in "), "the temp file is not an entry: {text}");
    assert!(errors.is_empty(), "{errors}");
    let (text, _) = check_runs(dir.path(), "donation");
    assert!(text.contains("loaded from the compile cache"), "{text}");
}

#[test]
fn a_cache_folder_that_cannot_be_written_warns_once_and_the_module_still_loads() {
    // Permissions do not stop root, so the entry's name is taken by a
    // folder: the rename of the written entry fails, as on a read-only
    // folder.
    let learn = cache_workspace(false);
    check_runs(learn.path(), "donation");
    let entry_name = entry_of(learn.path(), "donation").file_name().expect("a name").to_owned();

    let dir = cache_workspace(false);
    std::fs::create_dir_all(dir.path().join("cache").join(&entry_name)).expect("block the entry's name");
    let (text, errors) = check_runs(dir.path(), "donation");
    assert!(text.contains("loaded:        compiled in "), "{text}");
    assert!(errors.contains("cannot write to the compiled-module cache"), "{errors}");
    assert_eq!(errors.matches("cannot write").count(), 1, "warned once: {errors}");
    let files = cache_files(dir.path());
    assert!(files.iter().all(|name| !name.starts_with(".tmp-")), "the failed write's temp file is gone: {files:?}");
}
