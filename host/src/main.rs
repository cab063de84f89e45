//! The `fulfillment-host` command: `fulfillment-host --help`.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use fulfillment_host::settings::LogFormat;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // The fail points named in FAILPOINTS (crash tests only; see Cargo.toml).
    #[cfg(feature = "failpoints")]
    let _fail_points = fail::FailScenario::setup();
    // The format is known before the settings are loaded: the flag, or
    // `[logging]` read on its own from the settings file.
    let log_format = args.log_format();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.default_log_filter()));
    fulfillment_host::logging::init(log_format, filter, colours_on_stderr());
    match cli::run(args).await {
        Ok(code) => code,
        Err(error) => {
            match log_format {
                LogFormat::Text => eprintln!("error: {error:#}"),
                LogFormat::Json => fulfillment_host::logging::announce_json(
                    tracing::Level::ERROR,
                    "the command failed",
                    &[("error", &format!("{error:#}"))],
                ),
            }
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

/// Colours in the log only on a terminal, and not when NO_COLOR is set to
/// anything but the empty string (https://no-color.org): a log written to a
/// file or a pipe stays plain text.
fn colours_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}
