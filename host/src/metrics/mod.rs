//! The host's Prometheus metrics (`GET /metrics`), with the Prometheus
//! org's `prometheus-client`: one [`Metrics`] (one registry) per
//! [`Services`](crate::services::Services), so that two hosts in one
//! process (the tests run many) count only their own work. There is no
//! global recorder.
//!
//! Who records what:
//! - the services: orders placed, orders reaching `Complete` or
//!   `Fulfillment Error`, payment outcomes, the duration of a fulfillment
//!   attempt, job runs and give-ups;
//! - the API's middleware: requests by route (the route template, never
//!   the raw path), method and status, and their duration;
//! - the runtime keeps its own atomic counters per module
//!   ([`crate::runtime::ModuleStats`]), and the circuit breakers and
//!   in-flight slots their state: [`runtime::RuntimeCollector`] reads them
//!   when the metrics are encoded, so the runtime knows nothing of
//!   Prometheus;
//! - the job queue's depth is read from the database by the `/metrics`
//!   handler and set just before encoding ([`Metrics::set_queue_depth`]).

mod runtime;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::model::OrderStatus;
use crate::runtime::Runtime;
use crate::storage::{JobKind, JobState};

/// The `Content-Type` of `GET /metrics`: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The buckets (seconds) of one fulfillment attempt of an order: the
/// claim and every module's `fulfill-product`, up to modules waiting their
/// HTTP time-outs.
const FULFILLMENT_SECONDS_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The buckets (seconds) of an HTTP request, up to the request time-out.
const HTTP_SECONDS_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

/// How a charge ended, as `fulfillment_payments_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The processor took the money.
    Authorized,
    /// The payer's side said no.
    Declined,
    /// The processor failed, or refused the payment, without charging.
    Failed,
    /// The processor failed and cannot say whether it charged: the checkout
    /// stays pending until its job finds out, and counts `Settled` or
    /// `Abandoned` for it then.
    Unknown,
    /// A checkout's job found the charge of an `Unknown` payment (or of a
    /// request that died after it): the order was made from the record.
    Settled,
    /// A checkout's job found no charge: nothing moved, no order.
    Abandoned,
}

impl PaymentOutcome {
    fn as_str(self) -> &'static str {
        match self {
            PaymentOutcome::Authorized => "authorized",
            PaymentOutcome::Declined => "declined",
            PaymentOutcome::Failed => "failed",
            PaymentOutcome::Unknown => "unknown",
            PaymentOutcome::Settled => "settled",
            PaymentOutcome::Abandoned => "abandoned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PaymentLabels {
    processor: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

type HistogramFamily<Labels> = Family<Labels, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_SECONDS_BUCKETS)
}

/// One host's metrics. Cheap to clone: every clone records into the same
/// registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    recorded: Families,
}

/// The metrics the host records as things happen (the registry holds them
/// too, with the runtime's collector). Clones share their values.
#[derive(Clone)]
struct Families {
    orders_placed: Counter,
    orders_finished: Family<StatusLabel, Counter>,
    payments: Family<PaymentLabels, Counter>,
    fulfillment_seconds: Histogram,
    job_attempts: Family<KindLabel, Counter>,
    job_give_ups: Counter,
    jobs: Family<StateLabel, Gauge>,
    http_requests: Family<RequestLabels, Counter>,
    http_seconds: HistogramFamily<RouteLabels>,
}

impl Families {
    fn new() -> Families {
        Families {
            orders_placed: Counter::default(),
            orders_finished: Family::default(),
            payments: Family::default(),
            fulfillment_seconds: Histogram::new(FULFILLMENT_SECONDS_BUCKETS),
            job_attempts: Family::default(),
            job_give_ups: Counter::default(),
            jobs: Family::default(),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(http_histogram),
        }
    }

    /// A registry of these metrics and the runtime's.
    fn registry(&self, runtime: Arc<Runtime>) -> Registry {
        let mut registry = Registry::with_prefix("fulfillment");
        registry.register("orders_placed", "Orders placed (paid and stored)", self.orders_placed.clone());
        registry.register(
            "orders_finished",
            "Orders that reached Complete or Fulfillment Error, once per change of status",
            self.orders_finished.clone(),
        );
        registry.register(
            "payments",
            "Charges by processor and outcome (authorized, declined, failed, unknown)",
            self.payments.clone(),
        );
        registry.register_with_unit(
            "order_fulfillment_duration",
            "One fulfillment attempt of an order: claiming its lines and every module's fulfill-product",
            Unit::Seconds,
            self.fulfillment_seconds.clone(),
        );
        registry.register("job_attempts", "Runs of queued jobs, by kind", self.job_attempts.clone());
        registry.register("job_give_ups", "Fulfillment jobs given up after their last retry", self.job_give_ups.clone());
        registry.register("jobs", "Jobs in the queue by state, read from the database at scrape time", self.jobs.clone());
        registry.register("http_requests", "HTTP requests by route template, method and status", self.http_requests.clone());
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request duration by route template and method",
            Unit::Seconds,
            self.http_seconds.clone(),
        );
        registry.register_collector(Box::new(runtime::RuntimeCollector::new(runtime)));
        registry
    }
}

impl Metrics {
    /// The metrics of a host whose modules run on `runtime` (read at each
    /// scrape).
    pub fn new(runtime: Arc<Runtime>) -> Metrics {
        let recorded = Families::new();
        Metrics {
            registry: Arc::new(recorded.registry(runtime)),
            recorded,
        }
    }

    /// An order was placed (and stored).
    pub fn order_placed(&self) {
        self.recorded.orders_placed.inc();
    }

    /// An order's status changed to `status` (Complete or Fulfillment
    /// Error) and was stored.
    pub fn order_finished(&self, status: OrderStatus) {
        self.recorded.orders_finished.get_or_create(&StatusLabel { status: status.as_str() }).inc();
    }

    /// A charge through `processor` ended with `outcome`.
    pub fn payment(&self, processor: &str, outcome: PaymentOutcome) {
        let labels = PaymentLabels {
            processor: processor.to_string(),
            outcome: outcome.as_str(),
        };
        self.recorded.payments.get_or_create(&labels).inc();
    }

    /// One fulfillment attempt of an order took `elapsed`.
    pub fn fulfillment_attempt(&self, elapsed: Duration) {
        self.recorded.fulfillment_seconds.observe(elapsed.as_secs_f64());
    }

    /// A job of `kind` is run.
    pub fn job_attempt(&self, kind: JobKind) {
        self.recorded.job_attempts.get_or_create(&KindLabel { kind: kind.as_str() }).inc();
    }

    /// A fulfillment job was given up.
    pub fn job_given_up(&self) {
        self.recorded.job_give_ups.inc();
    }

    /// A request to `route` (the route template, or `unmatched`) answered
    /// `status` after `elapsed`.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            route: route.to_string(),
            method: method.to_string(),
            status,
        };
        self.recorded.http_requests.get_or_create(&labels).inc();
        let labels = RouteLabels {
            route: labels.route,
            method: labels.method,
        };
        self.recorded.http_seconds.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Sets the queue-depth gauges to `counts` (every state, zero for
    /// those missing).
    pub fn set_queue_depth(&self, counts: &[(JobState, u64)]) {
        for state in [JobState::Queued, JobState::Done, JobState::Failed, JobState::GaveUp] {
            let count = counts.iter().find(|(counted, _)| *counted == state).map_or(0, |(_, count)| *count);
            self.recorded
                .jobs
                .get_or_create(&StateLabel { state: state.as_str() })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_the_text_with_their_labels() {
        let runtime = Arc::new(Runtime::new().expect("a runtime"));
        let metrics = Metrics::new(runtime);
        metrics.order_placed();
        metrics.order_finished(OrderStatus::FulfillmentError);
        metrics.payment("test", PaymentOutcome::Declined);
        metrics.http_request("/api/v1/orders", "POST", 201, Duration::from_millis(3));
        metrics.set_queue_depth(&[(JobState::Done, 2)]);
        let text = metrics.encode().expect("encodes");
        for line in [
            "fulfillment_orders_placed_total 1",
            "fulfillment_orders_finished_total{status=\"Fulfillment Error\"} 1",
            "fulfillment_payments_total{processor=\"test\",outcome=\"declined\"} 1",
            "fulfillment_http_requests_total{route=\"/api/v1/orders\",method=\"POST\",status=\"201\"} 1",
            "fulfillment_http_request_duration_seconds_count{route=\"/api/v1/orders\",method=\"POST\"} 1",
            "fulfillment_jobs{state=\"done\"} 2",
            "fulfillment_jobs{state=\"queued\"} 0",
        ] {
            assert!(text.lines().any(|written| written == line), "no `{line}` in:\n{text}");
        }
    }
}
