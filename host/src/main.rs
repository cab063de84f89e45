//! The `fulfillment-host` command: `fulfillment-host --help`.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // The fail points named in FAILPOINTS (crash tests only; see Cargo.toml).
    #[cfg(feature = "failpoints")]
    let _fail_points = fail::FailScenario::setup();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.default_log_filter())),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colours_on_stderr())
        .init();
    match cli::run(args).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
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
