//! `fulfillment-host check MODULE.wasm`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fulfillment_host::runtime::{ContractVersion, ModuleEngine, Runtime};

use super::print::{emit, esc};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component to check.
    wasm: PathBuf,
}

pub async fn run(settings: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let module_settings = super::module_settings_for(settings, &args.wasm)?;
    let engine = ModuleEngine::build_cached(module_settings.limits.fuel.is_some(), &super::module_cache_dir(settings)?)?;
    let mut runtime = Runtime::with_engine(engine.clone())?;
    let module = runtime.add(&module_settings).await?;
    let info = module.info();
    let mut out = String::new();
    let contract = module.contract_version();
    writeln!(out, "{}: implements commerce:fulfillment/fulfillment-module@{contract}", args.wasm.display())?;
    writeln!(out, "  name:          {}", esc(&info.name))?;
    writeln!(out, "  version:       {}", esc(&info.version))?;
    writeln!(out, "  product types: {}", esc(&info.lane()))?;
    writeln!(out, "  claims with:   {} ({})", contract.claim_function(), match contract {
        ContractVersion::V1_0 => "once per line; rebuild against 1.1 for the batched supports-lines",
        ContractVersion::V1_1 => "once per order",
    })?;
    writeln!(out, "  sha256:        {}", module.digest())?;
    if let Some(origin) = engine.origin(module.digest()) {
        let cache = engine.cache_dir().map(|dir| format!(" (cache: {})", dir.display())).unwrap_or_else(|| " (no compile cache)".into());
        writeln!(out, "  loaded:        {origin}{cache}")?;
    }
    writeln!(out, "  imports:")?;
    for import in module.imports() {
        writeln!(out, "    {import}")?;
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
