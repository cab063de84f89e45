//! `fulfillment-host` as a real process: started with a settings file,
//! found on its port, stopped with SIGTERM or killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `fulfillment-host` binary of this build: next to the test binary's
/// folder (`target/debug/deps/..`). `cargo test` builds it with the host
/// crate's tests; it is missing only when just this test crate was built.
pub fn host_binary() -> PathBuf {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|test| test.parent()?.parent().map(|profile| profile.join("fulfillment-host")))
        .unwrap_or_else(|| PathBuf::from("target/debug/fulfillment-host"));
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p fulfillment-host` (scripts/test runs `cargo test` for the whole workspace, which does)",
        binary.display()
    );
    binary
}

/// The `XDG_CACHE_HOME` of the host processes (and of the CLI tests):
/// `target/tmp/xdg-cache`, so that settings without `[runtime]
/// module_cache_dir` share one compiled-module cache for the whole test run
/// (each module compiles once) and never write to the user's own cache.
pub fn shared_xdg_cache_home() -> PathBuf {
    crate::artifacts::workspace_root().join("target/tmp/xdg-cache")
}

/// The compiled-module cache folder that settings without `[runtime]`
/// get under [`shared_xdg_cache_home`]; in-process tests point their
/// settings at it too.
pub fn shared_module_cache_dir() -> PathBuf {
    shared_xdg_cache_home().join("fulfillment-host/modules")
}

/// A running `fulfillment-host` process.
pub struct HostProcess {
    child: Child,
    /// "http://127.0.0.1:PORT", for `serve`.
    pub url: Option<String>,
    /// What it wrote to stderr, line by line, as it comes.
    log: mpsc::Receiver<String>,
    /// Every line read from `log` so far.
    read: Vec<String>,
}

impl HostProcess {
    /// Starts `fulfillment-host --settings SETTINGS ARGS...`; for `serve`,
    /// waits (up to 60 s) until it says where it listens (a JSON log says it
    /// at `info`). It logs at `warn`, or at what `FULFILLMENT_TEST_HOST_LOG`
    /// says (`info` to see every call).
    pub fn start(settings: &Path, args: &[&str]) -> HostProcess {
        HostProcess::start_with_env(settings, args, &[])
    }

    /// The same with more environment variables (`FAILPOINTS`, say).
    pub fn start_with_env(settings: &Path, args: &[&str], env: &[(&str, &str)]) -> HostProcess {
        let mut child = Command::new(host_binary())
            .arg("--settings")
            .arg(settings)
            .args(args)
            .env("RUST_LOG", std::env::var("FULFILLMENT_TEST_HOST_LOG").unwrap_or_else(|_| "warn".into()))
            .env("XDG_CACHE_HOME", shared_xdg_cache_home())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start fulfillment-host");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = HostProcess {
            child,
            url: None,
            log,
            read: Vec::new(),
        };
        if args.first() == Some(&"serve") {
            let line = process.wait_for_line("listening on ", Duration::from_secs(60));
            // The banner, or the JSON log line that carries it (`"` ends it).
            process.url = line
                .split("listening on ")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string);
        }
        process
    }

    /// Waits (up to `limit`) for the process to end by itself; panics if it
    /// does not.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for fulfillment-host") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "fulfillment-host did not end within {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The next stderr line that contains `needle`; panics with what the
    /// process wrote if none comes within `limit` or the process ends.
    pub fn wait_for_line(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.read.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                    seen.push(line);
                }
                Err(_) => panic!("fulfillment-host did not print `{needle}`; it printed:\n{}", seen.join("\n")),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, waits for the exit (up to `limit`), and returns every line
    /// it wrote to stderr, from its start.
    pub fn terminate_and_read_log(mut self, limit: Duration) -> (ExitStatus, Vec<String>) {
        let log = std::mem::replace(&mut self.log, mpsc::channel().1);
        let mut lines = std::mem::take(&mut self.read);
        let status = self.terminate(limit);
        // The reader thread ends at the end of stderr, after the exit.
        lines.extend(log.iter());
        (status, lines)
    }

    /// SIGTERM, then waits for the process to exit (up to `limit`).
    pub fn terminate(mut self, limit: Duration) -> ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "fulfillment-host did not exit within {limit:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
