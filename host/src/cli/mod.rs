//! The command line: one file per command, each a thin shell over the
//! library (settings -> runtime -> dispatch).

mod check;
mod dispatch;
mod modules;
mod print;
mod run_module;
mod serve;
mod shutdown;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use fulfillment_host::settings::{LogFormat, ModuleCacheDir, ModuleName, ModuleSettings, Settings};

/// Exit code for an error that stopped the command (bad settings, a module
/// that does not load, an unreadable order).
pub const EXIT_ERROR: u8 = 2;
/// Exit code of `dispatch` when the order ends in `Fulfillment Error`.
pub const EXIT_ORDER_FAILED: u8 = 3;

/// Places orders and fulfills them through WebAssembly component modules.
#[derive(Debug, Parser)]
#[command(name = "fulfillment-host", version, about)]
pub struct Cli {
    /// The settings file; paths inside it are relative to it.
    #[arg(long, global = true, default_value = "settings.toml")]
    settings: PathBuf,
    /// Log module calls and HTTP calls (or set RUST_LOG); `run-module` shows
    /// the module's own log lines without it.
    #[arg(long, short, global = true)]
    verbose: bool,
    /// `text` or `json` (one JSON object a line); overrides `[logging]
    /// format` of the settings.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks that a .wasm component implements the fulfillment-module world;
    /// prints what it says of itself and what it imports.
    Check(check::Args),
    /// Runs one module on an order, as a local runner for plugin authors:
    /// which lines it claims and the outcome of each, with timings.
    RunModule(run_module::Args),
    /// Runs the whole dispatch of one order through the enabled modules and
    /// prints each line's module, status and note. Nothing is stored.
    Dispatch(dispatch::Args),
    /// Lists the modules that settings.toml enables, in dispatch order.
    Modules(modules::Args),
    /// Serves the HTTP API: places orders, fulfills them, retries, refunds,
    /// and runs the job workers.
    Serve(serve::Args),
    /// Runs the job workers (fulfillment, checkouts to complete, refunds),
    /// without the HTTP API, until SIGTERM.
    Worker(worker::Args),
}

impl Cli {
    /// The log's format: `--log-format`, else `[logging] format` of the
    /// settings file, else text.
    pub fn log_format(&self) -> LogFormat {
        self.log_format.or_else(|| Settings::log_format_in(&self.settings)).unwrap_or_default()
    }

    /// The log filter when RUST_LOG is not set. `run-module` shows every
    /// log line of the module it runs (target `module`): that is what a
    /// plugin author runs it for.
    pub fn default_log_filter(&self) -> &'static str {
        let host = if self.verbose || matches!(self.command, Command::Serve(_) | Command::Worker(_)) { "info" } else { "warn" };
        match (&self.command, host) {
            (Command::RunModule(_), "info") => "info,module=trace",
            (Command::RunModule(_), _) => "warn,module=trace",
            (_, host) => host,
        }
    }
}

/// Runs the command; the exit code says how it went.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let log_format = cli.log_format();
    match cli.command {
        Command::Check(args) => check::run(&cli.settings, args).await,
        Command::RunModule(args) => run_module::run(&cli.settings, args).await,
        Command::Dispatch(args) => dispatch::run(&cli.settings, args).await,
        Command::Modules(args) => modules::run(&cli.settings, args).await,
        Command::Serve(args) => serve::run(&cli.settings, args, log_format).await,
        Command::Worker(args) => worker::run(&cli.settings, args, log_format).await,
    }
}

/// The settings entry for the module file at `path`, if the settings file
/// exists and lists it; otherwise a fresh entry named after the file, with
/// no config and no HTTP. A settings file that exists but is broken is an
/// error: it would be confusing to silently ignore it.
fn module_settings_for(settings_path: &Path, wasm: &Path) -> anyhow::Result<ModuleSettings> {
    if settings_path.exists() {
        let settings = Settings::load(settings_path)?;
        let wanted = std::fs::canonicalize(wasm).ok();
        if let Some(entry) = settings
            .modules
            .iter()
            .find(|entry| wanted.is_some() && std::fs::canonicalize(&entry.path).ok() == wanted)
        {
            return Ok(entry.clone());
        }
    }
    Ok(ModuleSettings::for_file(ModuleName::from_file_name(wasm), wasm.to_path_buf()))
}

/// The compiled-module cache folder of the settings file at `settings_path`
/// (`[runtime]`), or the default one when the file does not exist.
fn module_cache_dir(settings_path: &Path) -> anyhow::Result<ModuleCacheDir> {
    if settings_path.exists() {
        Ok(Settings::load(settings_path)?.module_cache)
    } else {
        Ok(ModuleCacheDir::default_for_user())
    }
}

/// Reads and validates an ORDER.json file.
fn read_order(path: &Path) -> anyhow::Result<fulfillment_host::model::Order> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| anyhow::anyhow!("cannot read order file {}: {error}", path.display()))?;
    fulfillment_host::model::OrderDocument::parse(&text)
        .map_err(|error| anyhow::anyhow!("invalid order file {}: {error}", path.display()))
}
