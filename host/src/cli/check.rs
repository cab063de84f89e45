//! `fulfillment-host check MODULE.wasm`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fulfillment_host::runtime::{ModuleEngine, Runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The component to check.
    wasm: PathBuf,
}

pub async fn run(settings: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let module_settings = super::module_settings_for(settings, &args.wasm)?;
    let mut runtime = Runtime::with_engine(ModuleEngine::build(module_settings.limits.fuel.is_some())?)?;
    let module = runtime.add(&module_settings).await?;
    let info = module.info();
    println!("{}: implements commerce:fulfillment/fulfillment-module@1.0.0", args.wasm.display());
    println!("  name:          {}", info.name);
    println!("  version:       {}", info.version);
    println!("  product types: {}", info.product_types.join(", "));
    println!("  sha256:        {}", module.digest());
    println!("  imports:");
    for import in module.imports() {
        println!("    {import}");
    }
    Ok(ExitCode::SUCCESS)
}
