//! `fulfillment-host worker`: the fulfillment workers without the HTTP API.

use std::path::Path;
use std::process::ExitCode;

use fulfillment_host::app::build_service;
use fulfillment_host::jobs::run_workers_until;
use fulfillment_host::runtime::ModuleEngine;
use fulfillment_host::settings::{LogFormat, Settings};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Use this database instead of `[database] url` (sqlite://PATH or postgres://...).
    #[arg(long)]
    database: Option<String>,
}

pub async fn run(settings_path: &Path, args: Args, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(settings_path)?;
    if let Some(url) = args.database {
        settings.database.url = url;
    }
    let services = build_service(&settings, ModuleEngine::for_settings(&settings)?).await?;
    // Before the banner: a SIGTERM right after it stops the workers gracefully.
    let stop = super::shutdown::signal();
    let banner = format!(
        "fulfillment-host worker {}: running {} workers until SIGTERM",
        services.queue().host_id(),
        settings.fulfillment.workers
    );
    match log_format {
        LogFormat::Text => eprintln!("{banner}"),
        // Every line of a JSON log is JSON.
        LogFormat::Json => fulfillment_host::logging::announce_json(tracing::Level::INFO, &banner, &[]),
    }
    run_workers_until(services, stop).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
