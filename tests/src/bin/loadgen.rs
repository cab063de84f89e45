//! A load generator for `fulfillment-host serve`: places orders over HTTP
//! from N concurrent clients and reports orders/s and latency percentiles.
//!
//! `cargo run --release -p fulfillment-tests --bin loadgen -- \
//!     --url http://127.0.0.1:8080 --token demo-checkout-token \
//!     --body examples/donation.json --clients 1,8,64 --orders 2000`
//!
//! Every request carries its own `Idempotency-Key` (so each places a new
//! order); an answer other than 201 Created with a `Complete` order counts
//! as an error, by status (`201 Fulfillment Error`, say).
//! One line per client count, as a Markdown table row.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The host's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A `checkout` API token.
    #[arg(long, default_value = "demo-checkout-token")]
    token: String,
    /// The checkout body to post, as JSON (docs/api.md).
    #[arg(long)]
    body: PathBuf,
    /// Concurrent clients, one run each: "1,8,64".
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    clients: Vec<usize>,
    /// Orders per run.
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Orders placed before each run, not counted (connections, caches).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// A label for the rows ("sqlite donation wasm").
    #[arg(long, default_value = "")]
    label: String,
}

/// What one run measured.
struct Run {
    clients: usize,
    elapsed: Duration,
    /// Latencies of the 201 answers.
    latencies: Vec<Duration>,
    /// Other answers by status (0: no answer) and, for a 201, the order's
    /// status when it is not Complete.
    errors: BTreeMap<String, usize>,
}

impl Run {
    fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * fraction).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }

    fn row(&self, label: &str) -> String {
        let millis = |duration: Duration| duration.as_secs_f64() * 1000.0;
        let errors = if self.errors.is_empty() {
            "0".to_string()
        } else {
            self.errors.iter().map(|(failure, count)| format!("{count} x {failure}")).collect::<Vec<_>>().join(", ")
        };
        format!(
            "| {label} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {errors} |",
            self.clients,
            self.latencies.len(),
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            millis(self.percentile(0.50)),
            millis(self.percentile(0.99)),
            millis(self.latencies.last().copied().unwrap_or_default()),
        )
    }
}

/// Places one order: None when it was created and Complete, else what came
/// back instead; and how long it took.
async fn place(client: &reqwest::Client, args: &Args, body: &Arc<Vec<u8>>, key: String) -> (Option<String>, Duration) {
    let started = Instant::now();
    let answer = client
        .post(format!("{}/api/v1/orders", args.url))
        .bearer_auth(&args.token)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(body.as_ref().clone())
        .send()
        .await;
    let failure = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the whole answer: the order is placed when it is sent.
            let order = response.json::<serde_json::Value>().await.unwrap_or_default();
            match order["status"].as_str() {
                Some("Complete") if status == 201 => None,
                Some(order_status) => Some(format!("{status} {order_status}")),
                None => Some(status.to_string()),
            }
        }
        Err(_) => Some("no answer".to_string()),
    };
    (failure, started.elapsed())
}

async fn run(args: Arc<Args>, body: Arc<Vec<u8>>, clients: usize, prefix: String) -> Run {
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap_or_default();
    for index in 0..args.warmup {
        place(&client, &args, &body, format!("{prefix}-warmup-{index}")).await;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (client, args, body, next, prefix) = (client.clone(), args.clone(), body.clone(), next.clone(), prefix.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= args.orders {
                        return seen;
                    }
                    seen.push(place(&client, &args, &body, format!("{prefix}-{index}")).await);
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(args.orders);
    let mut errors = BTreeMap::new();
    for worker in workers {
        for (failure, latency) in worker.await.unwrap_or_default() {
            match failure {
                None => latencies.push(latency),
                Some(failure) => *errors.entry(failure).or_insert(0) += 1,
            }
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Run {
        clients,
        elapsed,
        latencies,
        errors,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let body = Arc::new(std::fs::read(&args.body).with_context(|| format!("cannot read {}", args.body.display()))?);
    serde_json::from_slice::<serde_json::Value>(&body).with_context(|| format!("{} is not JSON", args.body.display()))?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    println!("| run | clients | orders | orders/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|---|---|");
    for &clients in &args.clients {
        let result = run(args.clone(), body.clone(), clients.max(1), format!("loadgen-{stamp}-{clients}")).await;
        println!("{}", result.row(&args.label));
    }
    Ok(())
}
