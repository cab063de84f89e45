//! scripts/component-toolchains and scripts/build-components, run for real
//! on a copy of the repository's scripts, WIT and the two example modules,
//! with stand-in tool chains: an `npm` that "installs" a componentize-js
//! whose `componentize()` wraps the source in a component header, and a
//! `python3 -m venv` whose `pip` "installs" such a componentize-py (the
//! real python runs it). The real ones take minutes to install and seconds
//! to build; these tests are about what the scripts do around them: the
//! cache keys, what a failed build leaves, what a cache entry must be, a
//! tool chain whose interpreter is gone. Needs node and python3 (skipped,
//! saying so, without them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The first bytes of a WebAssembly component: `\0asm`, version 0x0d, layer 1.
const COMPONENT_MAGIC: &[u8] = b"\0asm\x0d\x00\x01\x00";

/// The stand-in componentize-js (its `src/componentize.js`): refuses a
/// source that asks it to, else returns the magic and the source.
const FAKE_COMPONENTIZE_JS: &str = r#"import { readFile } from 'node:fs/promises';
export async function componentize({ sourcePath }) {
  const source = await readFile(sourcePath);
  if (source.includes('FAIL_THE_BUILD')) throw new Error('the stand-in componentize-js refuses this source');
  return { component: Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]), source]) };
}
"#;

/// The stand-in componentize-py, run by the venv's python as
/// `python3 componentize-py ARGS`.
const FAKE_COMPONENTIZE_PY: &str = r#"import sys
args = sys.argv[1:]
if args == ['--version']:
    print('componentize-py 0.0.0-stand-in')
    sys.exit(0)
source = open('app.py', 'rb').read()
if b'FAIL_THE_BUILD' in source:
    sys.exit('the stand-in componentize-py refuses this source')
open(args[args.index('-o') + 1], 'wb').write(b'\0asm\x0d\x00\x01\x00' + source)
"#;

/// A copy of what the scripts need, its own tool-chain and component
/// caches, and the stand-ins first on PATH.
struct Sandbox {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    toolchains: PathBuf,
    components: PathBuf,
    path: String,
}

/// The sandbox, or None (saying why) without node or python3.
fn sandbox() -> Option<Sandbox> {
    let python = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().ok();
    let python = match python {
        Some(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim().to_string(),
        _ => {
            eprintln!("skipped: needs python3");
            return None;
        }
    };
    if !Command::new("node").arg("--version").output().is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: needs node");
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let source = fulfillment_tests::artifacts::workspace_root();
    let repo = dir.path().join("repo");
    for part in [
        "scripts/build-components",
        "scripts/component-toolchains",
        "scripts/toolchains",
        "plugins/gift-card",
        "plugins/subscription",
        "wit/1.1",
    ] {
        let to = repo.join(part);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        let copied = Command::new("cp").arg("-R").arg(source.join(part)).arg(&to).status().expect("cp");
        assert!(copied.success(), "copy {part}");
    }
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let stand_ins = dir.path().join("stand-ins");
    std::fs::create_dir_all(&stand_ins).expect("mkdir");
    std::fs::write(stand_ins.join("componentize.js"), FAKE_COMPONENTIZE_JS).expect("write");
    std::fs::write(stand_ins.join("componentize-py"), FAKE_COMPONENTIZE_PY).expect("write");
    let stand_ins = stand_ins.display();
    executable(
        &bin.join("npm"),
        &format!(
            r#"#!/bin/sh
# `npm ci` of scripts/toolchains/js: a componentize-js of the lock's version.
set -e
[ "$1" = ci ] && [ -f package-lock.json ]
package=node_modules/@bytecodealliance/componentize-js
mkdir -p "$package/src"
echo '{{"version": "0.0.0-stand-in"}}' > "$package/package.json"
cp {stand_ins}/componentize.js "$package/src/componentize.js"
"#
        ),
    );
    executable(
        &bin.join("python3"),
        &format!(
            r#"#!/bin/sh
# `python3 -m venv DIR`: a venv whose python is the real one and whose pip
# installs the stand-in componentize-py; anything else is the real python.
if [ "$1" = -m ] && [ "$2" = venv ]; then
    mkdir -p "$3/bin"
    ln -s {python} "$3/bin/python"
    ln -s python "$3/bin/python3"
    printf '#!/bin/sh\ncp {stand_ins}/componentize-py "$(dirname "$0")/componentize-py"\n' > "$3/bin/pip"
    chmod +x "$3/bin/pip"
    exit 0
fi
exec {python} "$@"
"#
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let toolchains = dir.path().join("toolchains");
    let components = dir.path().join("components");
    Some(Sandbox {
        _dir: dir,
        repo,
        toolchains,
        components,
        path,
    })
}

fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

impl Sandbox {
    fn run(&self, script: &str) -> Output {
        Command::new(self.repo.join("scripts").join(script))
            .env("PATH", &self.path)
            .env("FULFILLMENT_TOOLCHAINS", &self.toolchains)
            .env("FULFILLMENT_COMPONENT_CACHE", &self.components)
            .output()
            .expect("run the script")
    }

    /// Runs build-components; its stdout and stderr, and whether it
    /// succeeded.
    fn build(&self) -> (bool, String) {
        let output = self.run("build-components");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    /// How build-components got `name` ("built with ...", "copied from the
    /// cache"), from its report.
    fn how(text: &str, name: &str) -> String {
        let prefix = format!("build-components: {name}: ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|rest| rest.split(" in ").next().unwrap_or_default().to_string())
            .unwrap_or_else(|| format!("no report of {name} in: {text}"))
    }

    fn output(&self, name: &str) -> PathBuf {
        self.repo.join("target/wasm32-wasip2/plugin").join(format!("{name}.wasm"))
    }

    fn edit(&self, file: &str, change: impl FnOnce(String) -> String) {
        let path = self.repo.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let changed = change(text.clone());
        assert_ne!(changed, text, "{file} changed");
        std::fs::write(&path, changed).expect("write");
    }

    /// The cache entry that holds `name`'s component (the output's copy).
    fn entry_of(&self, name: &str) -> PathBuf {
        let output = std::fs::read(self.output(name)).expect("the output");
        std::fs::read_dir(&self.components)
            .expect("the cache")
            .map(|item| item.expect("an item").path())
            .find(|path| path.extension().is_some_and(|ext| ext == "wasm") && std::fs::read(path).is_ok_and(|bytes| bytes == output))
            .expect("an entry of the component")
    }
}

const BUILT: &str = "built with";
const COPIED: &str = "copied from the cache";

fn how_each(sandbox: &Sandbox) -> (String, String) {
    let (succeeded, text) = sandbox.build();
    assert!(succeeded, "{text}");
    let short = |name| {
        let how = Sandbox::how(&text, name);
        if how.starts_with(BUILT) { BUILT.to_string() } else { how }
    };
    (short("gift-card"), short("subscription"))
}

/// What the JavaScript component is built with beyond componentize-js's
/// version (its dependencies, which float within ranges and are pinned
/// by the lock file only), and how each module's build function runs its
/// tool chain, are part of the modules' cache keys.
#[test]
fn the_lock_file_and_the_build_functions_are_in_the_cache_keys() {
    let Some(sandbox) = sandbox() else { return };
    let built = (BUILT.to_string(), BUILT.to_string());
    assert_eq!(how_each(&sandbox), built, "the first build");
    let copied = (COPIED.to_string(), COPIED.to_string());
    assert_eq!(how_each(&sandbox), copied, "unchanged: both from the cache");

    // Another jco or wizer within componentize-js's ranges: the same
    // componentize-js version, another lock file (and tool-chain folder).
    sandbox.edit("scripts/toolchains/js/package-lock.json", |lock| {
        lock.replacen("\"lockfileVersion\"", "\"x-another-resolution\": true,\n  \"lockfileVersion\"", 1)
    });
    let mut outcomes = vec![("the lock file", how_each(&sandbox))];
    sandbox.edit("scripts/build-components", |script| {
        script.replacen(r#""$world" "$2""#, r#""$world" "$2" --another-option"#, 1)
    });
    outcomes.push(("build_js", how_each(&sandbox)));
    sandbox.edit("scripts/build-components", |script| {
        script.replacen("componentize -p . app", "componentize -p . -p . app", 1)
    });
    outcomes.push(("build_python", how_each(&sandbox)));
    assert_eq!(
        outcomes,
        vec![
            ("the lock file", (BUILT.to_string(), COPIED.to_string())),
            ("build_js", (BUILT.to_string(), COPIED.to_string())),
            ("build_python", (COPIED.to_string(), BUILT.to_string())),
        ],
        "(what changed, (gift-card, subscription))"
    );
}

/// A build that fails leaves no component where the tests would load it,
/// not the previous one.
#[test]
fn a_failed_build_leaves_no_stale_component() {
    let Some(sandbox) = sandbox() else { return };
    let (succeeded, text) = sandbox.build();
    assert!(succeeded, "{text}");
    assert!(sandbox.output("gift-card").exists() && sandbox.output("subscription").exists());
    sandbox.edit("plugins/gift-card/gift-card.js", |source| format!("{source}\n// FAIL_THE_BUILD\n"));
    let (succeeded, text) = sandbox.build();
    assert!(!succeeded, "the build fails: {text}");
    let left: Vec<bool> = ["gift-card", "subscription"].iter().map(|name| sandbox.output(name).exists()).collect();
    assert_eq!(left, [false, false], "no component of the failed run stays (gift-card, subscription): {text}");
}

/// A cache entry is a component only if it starts with the component
/// magic: anything else (an error page, a truncated copy) is built again;
/// temporary files that an interrupted copy left are removed.
#[test]
fn a_cache_entry_that_is_not_a_component_is_rebuilt_and_stale_temporary_files_go() {
    let Some(sandbox) = sandbox() else { return };
    let (succeeded, text) = sandbox.build();
    assert!(succeeded, "{text}");
    let entry = sandbox.entry_of("gift-card");
    std::fs::write(&entry, "<html>502 Bad Gateway</html>").expect("spoil the entry");
    let stale_entry = PathBuf::from(format!("{}.12345.tmp", entry.display()));
    let stale_output = sandbox.repo.join("target/wasm32-wasip2/plugin/.gift-card.wasm.12345.tmp");
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    for stale in [&stale_entry, &stale_output] {
        std::fs::write(stale, "half a copy").expect("a stale temporary file");
        std::fs::File::options().write(true).open(stale).and_then(|file| file.set_modified(two_hours_ago)).expect("age it");
    }
    // A young one may be another clone's copy in progress: it stays.
    let in_progress = sandbox.repo.join("target/wasm32-wasip2/plugin/.subscription.wasm.99999.tmp");
    std::fs::write(&in_progress, "a copy in progress").expect("a fresh temporary file");
    let (succeeded, text) = sandbox.build();
    assert!(succeeded, "{text}");
    let gift_card = std::fs::read(sandbox.output("gift-card")).expect("the output");
    assert_eq!(
        (Sandbox::how(&text, "gift-card").starts_with(BUILT), gift_card.starts_with(COMPONENT_MAGIC), stale_entry.exists(), stale_output.exists()),
        (true, true, false, false),
        "(rebuilt, a component, the stale entry copy left, the stale output copy left): {text}"
    );
    assert!(in_progress.exists(), "another run's copy in progress is left alone");
}

/// A Python tool chain whose venv's interpreter is gone (the python it was
/// made with was removed or upgraded) is installed again, instead of its
/// `done` marker failing every build.
#[test]
fn a_python_tool_chain_whose_interpreter_is_gone_is_installed_again() {
    let Some(sandbox) = sandbox() else { return };
    let (succeeded, text) = sandbox.build();
    assert!(succeeded, "{text}");
    let venv_python = std::fs::read_dir(&sandbox.toolchains)
        .expect("the tool chains")
        .map(|item| item.expect("an item").path())
        .find(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("python-")))
        .expect("the Python tool chain")
        .join("venv/bin/python");
    std::fs::remove_file(&venv_python).expect("remove the venv's python link");
    std::os::unix::fs::symlink("/nonexistent/python3.0", &venv_python).expect("a link to an interpreter that is gone");
    let (succeeded, text) = sandbox.build();
    assert!(succeeded, "the build installs the tool chain again: {text}");
    assert!(text.contains("installing componentize-py"), "{text}");
}
