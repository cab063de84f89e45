//! `fulfillment-host modules`

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use fulfillment_host::runtime::Runtime;
use fulfillment_host::settings::Settings;

use super::print::{emit, esc};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(settings_path)?;
    let runtime = Runtime::load(&settings).await?;
    if args.json {
        let loaded = runtime.modules().iter().map(|module| {
            serde_json::json!({
                "name": module.name(),
                "status": "running",
                "module": module.info().name,
                "version": module.info().version,
                "contract": module.contract_version().as_str(),
                "product_types": module.info().product_types,
                "wildcard": module.info().is_wildcard(),
                "sha256": module.digest().to_string(),
                "path": module.path().display().to_string(),
                "credentials": module.credentials(),
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
        emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    writeln!(out, "{:<20} {:<10} {:<8} {:<24} {:<64} path", "name", "version", "contract", "product types", "sha256")?;
    for module in runtime.modules() {
        writeln!(
            out,
            "{:<20} {:<10} {:<8} {:<24} {} {}",
            module.name(),
            esc(&module.info().version),
            module.contract_version().as_str(),
            esc(&module.info().lane()),
            module.digest(),
            module.path().display()
        )?;
    }
    for module in runtime.disabled() {
        writeln!(out, "{:<20} (disabled: {})", module.name, esc(&module.reason))?;
    }
    for module in runtime.modules() {
        for credential in module.credentials() {
            writeln!(
                out,
                "{:<20} authenticates to {} with {} (held by the host)",
                module.name(),
                credential.destination,
                credential.kind
            )?;
        }
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
