//! `fulfillment-host dispatch --order ORDER.json [--dry-run]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fulfillment_host::dispatch;
use fulfillment_host::runtime::Runtime;
use fulfillment_host::settings::Settings;

use super::{print, read_order};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The order, as JSON (docs/order-json.md).
    #[arg(long)]
    order: PathBuf,
    /// Only ask which module would claim each line; fulfill nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the order and the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings_path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(settings_path)?;
    let mut order = read_order(&args.order)?;
    let runtime = Runtime::load(&settings).await?;
    if args.dry_run {
        let plan = dispatch::plan(&runtime, &order).await;
        if args.json {
            print::emit(&format!("{}\n", serde_json::to_string_pretty(&plan)?))?;
        } else {
            print::emit(&print::plan(&order, &plan)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = dispatch::fulfill_order(&runtime, &mut order).await?;
    print::finish(&order, &report, args.json)
}
