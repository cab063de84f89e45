//! `fulfillment-host modules`

use std::path::Path;
use std::process::ExitCode;

use fulfillment_host::runtime::Runtime;
use fulfillment_host::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(settings_path)?;
    let runtime = Runtime::load(&settings).await?;
    let loaded = runtime.modules().iter().map(|module| {
        serde_json::json!({
            "name": module.name(),
            "status": "running",
            "module": module.info().name,
            "version": module.info().version,
            "product_types": module.info().product_types,
            "sha256": module.digest().to_string(),
            "path": module.path().display().to_string(),
        })
    });
    let disabled = runtime.disabled().iter().map(|module| {
        serde_json::json!({
            "name": module.name,
            "status": if module.load_failed { "failed" } else { "disabled" },
            "error": module.reason,
            "path": module.path.display().to_string(),
        })
    });
    let rows: Vec<serde_json::Value> = loaded.chain(disabled).collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20} {:<10} {:<22} {:<16} path", "name", "version", "product types", "sha256");
    for module in runtime.modules() {
        let digest = module.digest().to_string();
        println!(
            "{:<20} {:<10} {:<22} {:<16} {}",
            module.name(),
            module.info().version,
            module.info().product_types.join(", "),
            &digest[..16],
            module.path().display()
        );
    }
    for module in runtime.disabled() {
        println!("{:<20} (disabled: {})", module.name, module.reason);
    }
    Ok(ExitCode::SUCCESS)
}
