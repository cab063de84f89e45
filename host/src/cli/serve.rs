//! `fulfillment-host serve`: the HTTP API.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use fulfillment_host::app::Application;
use fulfillment_host::settings::{LogFormat, Settings};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen here instead of `[server] bind`.
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// Use this database instead of `[database] url` (sqlite://PATH or postgres://...).
    #[arg(long)]
    database: Option<String>,
    /// Run the native baseline's plain Rust modules in place of the .wasm
    /// files (benchmark-only; docs/performance.md).
    #[cfg(feature = "native-baseline")]
    #[arg(long)]
    native_baseline: bool,
}

pub async fn run(settings_path: &Path, args: Args, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(settings_path)?;
    if let Some(bind) = args.bind {
        settings.server.bind = bind;
    }
    if let Some(url) = args.database {
        settings.database.url = url;
    }
    #[cfg(feature = "native-baseline")]
    if args.native_baseline {
        tracing::warn!("running the native baseline's modules instead of the .wasm files: for benchmarks only");
        settings.native_baseline = true;
    }
    let app = Application::build(&settings).await?;
    let address = app.local_addr()?;
    // Before the banner: a SIGTERM right after it stops the host gracefully.
    let stop = super::shutdown::signal();
    match log_format {
        LogFormat::Text => {
            tracing::info!(%address, "listening");
            eprintln!("fulfillment-host listening on http://{address}");
        }
        // Every line of a JSON log is JSON: the banner is a log line too.
        LogFormat::Json => fulfillment_host::logging::announce_json(
            tracing::Level::INFO,
            &format!("fulfillment-host listening on http://{address}"),
            &[("address", &address.to_string())],
        ),
    }
    app.run_until(stop).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
