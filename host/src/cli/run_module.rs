//! `fulfillment-host run-module MODULE.wasm --order ORDER.json`: the local
//! runner for plugin authors. The module runs exactly as in the host (same
//! dispatch, same lanes, same limits, same checks of its answers), alone; its
//! log lines show on stderr (every level; the host's own from warn, or info
//! with `-v`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use fulfillment_host::dispatch;
use fulfillment_host::runtime::{ModuleEngine, Runtime};
use fulfillment_host::settings::AllowedHost;

use super::print::{self, esc};
use super::read_order;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component to run.
    wasm: PathBuf,
    /// The order, as JSON (docs/order-json.md).
    #[arg(long)]
    order: PathBuf,
    /// A config value for the module, over what settings.toml gives it.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// A destination the module may call, such as http://127.0.0.1:18000,
    /// besides the allowed_hosts that settings.toml gives it.
    #[arg(long = "allow-host", value_name = "URL")]
    allow_hosts: Vec<String>,
    /// Print the order and the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let mut module_settings = super::module_settings_for(settings_path, &args.wasm)?;
    for pair in &args.config {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--config `{pair}`: expected KEY=VALUE"))?;
        module_settings
            .config
            .insert(key.to_string(), toml::Value::String(value.to_string()));
    }
    for url in args.allow_hosts {
        let allowed = AllowedHost::try_from(url).map_err(|why| anyhow::anyhow!("--allow-host: {why}"))?;
        module_settings.allowed_hosts.push(allowed);
    }
    let mut order = read_order(&args.order)?;
    // As `dispatch` and `check` do: an engine that meters fuel when the
    // module has a `limits.fuel` budget.
    let engine = ModuleEngine::build_cached(module_settings.limits.fuel.is_some(), &super::module_cache_dir(settings_path)?)?;
    let mut runtime = Runtime::with_engine(engine)?;
    let module = runtime.add(&module_settings).await?;
    let info = module.info();
    eprintln!(
        "module {} ({} {}, product types: {}, commerce:fulfillment@{})",
        module.name(),
        esc(&info.name),
        esc(&info.version),
        esc(&info.lane()),
        module.contract_version()
    );
    let report = dispatch::fulfill_order(&runtime, &mut order).await?;
    print::finish(&order, &report, args.json)
}
