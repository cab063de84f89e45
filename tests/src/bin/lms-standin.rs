//! The LMS stand-in as a program, for the demo and for trying modules by
//! hand: `cargo run -p fulfillment-tests --bin lms-standin -- --port 18000`.

use std::time::Duration;

use clap::Parser;
use fulfillment_tests::lms::LmsStandIn;

/// Serves the LMS Enrollment and Entitlements API contract on a loopback
/// port, with its OAuth2 token endpoint: the Enrollment API takes the API key
/// (or a token), the Entitlements API a JWT from client `ecommerce-worker`
/// with secret `ecommerce-worker-secret`.
#[derive(Debug, Parser)]
struct Args {
    /// The loopback port to listen on.
    #[arg(long, default_value_t = 18000)]
    port: u16,
    /// The X-Edx-Api-Key it accepts.
    #[arg(long, default_value = "demo-lms-api-key")]
    api_key: String,
    /// Wait this many milliseconds before each answer.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Answer every request with this HTTP status.
    #[arg(long)]
    fail_status: Option<u16>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let lms = LmsStandIn::start_on(([127, 0, 0, 1], args.port).into(), &args.api_key).await?;
    if let Some(status) = args.fail_status {
        lms.fail_all(status, "failing on purpose (--fail-status)");
    }
    if let Some(ms) = args.delay_ms {
        lms.delay(Duration::from_millis(ms));
    }
    eprintln!("LMS stand-in listening on {}", lms.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
