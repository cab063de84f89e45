//! `GET /metrics`: who may read it, and that real orders move the counters
//! and histograms by exactly what they did (scraped before and after, the
//! text parsed); and each module's call statistics after real calls into
//! the `misbehaving` fixture.

use std::collections::BTreeMap;

use fulfillment_host::dispatch;
use fulfillment_host::runtime::{LoadedModule, ModuleFunction, Runtime};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, CHECKOUT_TOKEN, COURSE, Db, TestApp, checkout, digest};
use crate::on_both_databases;
use crate::support::{self, line, module_entry, with_limits};

on_both_databases!(orders_move_the_metrics_by_what_they_did, only_admins_and_the_scrape_token_read_the_metrics);

/// The scrape token of the tests' `[metrics]`.
const SCRAPE_TOKEN: &str = "scrape-token";

async fn spawn(db: Db) -> TestApp {
    TestApp::spawn_with(db, &format!("[metrics]\ntoken_sha256 = \"{}\"\n", digest(SCRAPE_TOKEN))).await
}

/// The metrics as `GET /metrics` answers them to `token`: the status, the
/// content type and the text.
async fn scrape_as(app: &TestApp, token: Option<&str>) -> (StatusCode, String, String) {
    let url = format!("{}/metrics", app.base.trim_end_matches("/api/v1"));
    let mut request = app.http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the host answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, response.text().await.expect("a body"))
}

/// One scrape, parsed.
struct Scrape {
    /// Every sample: (name, labels) -> value.
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
    text: String,
}

impl Scrape {
    async fn of(app: &TestApp) -> Scrape {
        let (status, content_type, text) = scrape_as(app, Some(SCRAPE_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        Scrape::parse(text)
    }

    /// Parses the Prometheus text format: `name{label="value",...} number`.
    fn parse(text: String) -> Scrape {
        let mut samples = BTreeMap::new();
        for sample in text.lines().filter(|written| !written.starts_with('#') && !written.is_empty()) {
            let (series, value) = sample.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {sample}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number in {sample}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').unwrap_or_else(|| panic!("closed labels: {sample}"))),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("a label in {sample}"));
                    (key.to_string(), value.trim_end_matches('"').to_string())
                })
                .collect();
            let previous = samples.insert((name.to_string(), labels), value);
            assert!(previous.is_none(), "a series written twice: {sample}");
        }
        Scrape { samples, text }
    }

    /// The sample `name` with exactly `labels`; 0 when it is not written
    /// (a labelled counter appears at its first count).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        self.samples.get(&(name.to_string(), labels)).copied().unwrap_or(0.0)
    }

    /// Whether `# TYPE name kind` is written: the metric exists, whatever
    /// its samples.
    fn declares(&self, name: &str, kind: &str) -> bool {
        self.text.lines().any(|written| written == format!("# TYPE {name} {kind}"))
    }
}

/// A sample's name, its labels, and how much it should move.
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// How much each listed sample moved from `before` to `after`, next to
/// what it should have: (sample, moved, expected) for those that differ.
fn moved_wrongly(before: &Scrape, after: &Scrape, expected: &[Expected<'_>]) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(name, labels, by)| {
            let moved = after.value(name, labels) - before.value(name, labels);
            (moved != *by).then(|| format!("{name}{labels:?} moved by {moved}, expected {by}"))
        })
        .collect()
}

async fn orders_move_the_metrics_by_what_they_did(db: Db) {
    let app = spawn(db).await;
    let before = Scrape::of(&app).await;
    for metric in ["fulfillment_orders_placed_total", "fulfillment_module_calls_total", "fulfillment_job_give_ups_total"] {
        assert!(before.declares(metric.trim_end_matches("_total"), "counter") || before.declares(metric, "counter"), "{metric}");
    }
    assert!(before.declares("fulfillment_module_call_duration_seconds", "histogram"), "{}", before.text);

    // Two orders that complete, one whose seat the LMS fails, one declined.
    for _ in 0..2 {
        let (status, order) = app.place(&checkout("59.00", "tok_success"), None).await;
        assert_eq!((status, order["status"].as_str()), (StatusCode::CREATED, Some("Complete")), "{order}");
    }
    app.lms.fail_course(COURSE, 503, "LMS down for maintenance");
    let (status, order) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert_eq!((status, order["status"].as_str()), (StatusCode::CREATED, Some("Fulfillment Error")), "{order}");
    app.lms.heal();
    let (status, declined) = app.place(&checkout("59.00", "tok_decline"), None).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{declined}");
    // Requests are counted by route template, the dashboard's too; a path
    // no route matches is `unmatched`, never its raw path.
    let number = order["number"].as_str().expect("a number");
    let (status, _) = app.get(&format!("/orders/{number}"), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let root = app.base.trim_end_matches("/api/v1");
    for (path, expected) in [("/dashboard/sign-in", StatusCode::OK), ("/no/such/path-EDX-1", StatusCode::NOT_FOUND)] {
        let response = app.http.get(format!("{root}{path}")).send().await.expect("the host answers");
        assert_eq!(response.status(), expected, "{path}");
    }
    // Nor any method a client makes up.
    let made_up = reqwest::Method::from_bytes(b"BREW-EDX").expect("a method token");
    let response = app.http.request(made_up, format!("{root}/healthz")).send().await.expect("the host answers");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let after = Scrape::of(&app).await;
    let enrollment = |function: &'static str| -> [(&'static str, &'static str); 2] { [("module", "enrollment"), ("function", function)] };
    let (instantiate, supports, fulfill, revoke) =
        (enrollment("instantiate"), enrollment("supports-lines"), enrollment("fulfill-product"), enrollment("revoke-line"));
    let wrong = moved_wrongly(
        &before,
        &after,
        &[
            ("fulfillment_orders_placed_total", &[], 3.0),
            ("fulfillment_orders_finished_total", &[("status", "Complete")], 2.0),
            ("fulfillment_orders_finished_total", &[("status", "Fulfillment Error")], 1.0),
            ("fulfillment_payments_total", &[("processor", "test"), ("outcome", "authorized")], 3.0),
            ("fulfillment_payments_total", &[("processor", "test"), ("outcome", "declined")], 1.0),
            ("fulfillment_payments_total", &[("processor", "test"), ("outcome", "failed")], 0.0),
            ("fulfillment_order_fulfillment_duration_seconds_count", &[], 3.0),
            ("fulfillment_job_attempts_total", &[("kind", "fulfill")], 3.0),
            ("fulfillment_job_give_ups_total", &[], 0.0),
            // One seat an order: one store, one supports-lines, one
            // fulfill-product each, also for the seat the LMS failed (the
            // module answered: not a module fault).
            ("fulfillment_module_calls_total", &instantiate, 3.0),
            ("fulfillment_module_calls_total", &supports, 3.0),
            ("fulfillment_module_calls_total", &fulfill, 3.0),
            ("fulfillment_module_calls_total", &revoke, 0.0),
            ("fulfillment_module_call_duration_seconds_count", &fulfill, 3.0),
            ("fulfillment_module_call_duration_seconds_count", &supports, 3.0),
            ("fulfillment_module_calls_total", &[("module", "donation"), ("function", "fulfill-product")], 3.0),
            ("fulfillment_module_failures_total", &[("module", "enrollment"), ("kind", "trap")], 0.0),
            ("fulfillment_module_failures_total", &[("module", "enrollment"), ("kind", "timeout")], 0.0),
            ("fulfillment_module_failures_total", &[("module", "enrollment"), ("kind", "error")], 0.0),
            ("fulfillment_http_requests_total", &[("route", "/api/v1/orders"), ("method", "POST"), ("status", "201")], 3.0),
            ("fulfillment_http_requests_total", &[("route", "/api/v1/orders"), ("method", "POST"), ("status", "402")], 1.0),
            ("fulfillment_http_request_duration_seconds_count", &[("route", "/api/v1/orders"), ("method", "POST")], 4.0),
            ("fulfillment_http_requests_total", &[("route", "/api/v1/orders/{number}"), ("method", "GET"), ("status", "200")], 1.0),
            ("fulfillment_http_requests_total", &[("route", "/dashboard/sign-in"), ("method", "GET"), ("status", "200")], 1.0),
            ("fulfillment_http_requests_total", &[("route", "unmatched"), ("method", "GET"), ("status", "404")], 1.0),
            ("fulfillment_http_requests_total", &[("route", "/healthz"), ("method", "other"), ("status", "405")], 1.0),
            // The first scrape (a scrape counts once it is answered).
            ("fulfillment_http_requests_total", &[("route", "/metrics"), ("method", "GET"), ("status", "200")], 1.0),
        ],
    );
    assert!(wrong.is_empty(), "{wrong:#?}\n{}", after.text);
    assert!(!after.text.contains("EDX-"), "no raw path, no order number in a label:\n{}", after.text);
    // The histogram's buckets hold every call: +Inf is the count.
    let inf = [("module", "enrollment"), ("function", "fulfill-product"), ("le", "+Inf")];
    assert_eq!(
        after.value("fulfillment_module_call_duration_seconds_bucket", &inf),
        after.value("fulfillment_module_call_duration_seconds_count", &fulfill)
    );
    assert_eq!(after.value("fulfillment_module_circuit_breaker_state", &[("module", "enrollment")]), 0.0);
    assert_eq!(after.value("fulfillment_module_in_flight", &[("module", "enrollment")]), 0.0);

    // The queue's depth is the database's, as /readyz reads it.
    let (status, ready) = app.send(app.http.get(format!("{}/readyz", app.base.trim_end_matches("/api/v1"))), None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let jobs = ready["fulfillment"]["jobs"].as_object().expect("job counts").clone();
    for state in ["queued", "done", "failed", "gave-up"] {
        let counted = jobs.get(state).and_then(Value::as_f64).unwrap_or(0.0);
        assert_eq!(after.value("fulfillment_jobs", &[("state", state)]), counted, "{state}: {ready}");
    }
    assert!(after.value("fulfillment_jobs", &[("state", "failed")]) >= 1.0, "the failed order's job: {ready}");
}

async fn only_admins_and_the_scrape_token_read_the_metrics(db: Db) {
    let app = spawn(db).await;
    for (token, expected, code) in [
        (None, StatusCode::UNAUTHORIZED, Some("unauthorized")),
        (Some("not-a-token"), StatusCode::UNAUTHORIZED, Some("unauthorized")),
        (Some(CHECKOUT_TOKEN), StatusCode::FORBIDDEN, Some("forbidden")),
        (Some(SCRAPE_TOKEN), StatusCode::OK, None),
        (Some(ADMIN_TOKEN), StatusCode::OK, None),
    ] {
        let (status, content_type, text) = scrape_as(&app, token).await;
        assert_eq!(status, expected, "{token:?}: {text}");
        match code {
            Some(code) => {
                assert_eq!(content_type, "application/json", "{token:?}");
                let body: Value = serde_json::from_str(&text).expect("the error shape");
                assert_eq!(body["error"]["code"], code, "{token:?}: {body}");
            }
            None => assert!(text.contains("# TYPE fulfillment_orders_placed_total counter"), "{text}"),
        }
    }
    // The scrape token is not an API token.
    let (status, _) = app.get("/orders", SCRAPE_TOKEN).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // `public = true`: no token needed.
    let public = TestApp::spawn_with(Db::Sqlite, "[metrics]\npublic = true\n").await;
    let (status, _, text) = scrape_as(&public, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

/// The misbehaving fixture acting out `behaviour` on seats, under `limits`.
async fn fixture(behaviour: &str, limits: &[(&str, &str)]) -> Runtime {
    let entry = module_entry("misbehaving", "misbehaving", &[], &[("claim", "Seat"), ("behaviour", behaviour)]);
    support::runtime(&with_limits(entry, limits)).await
}

/// Dispatches an order of two seats through `runtime`; returns what its
/// module's statistics moved by: (calls, failures, traps, timeouts).
async fn dispatch_two_seats(runtime: &Runtime, number: &str) -> (u64, u64, u64, u64) {
    let module: &LoadedModule = runtime.module("misbehaving").expect("loaded");
    let before = module.call_stats();
    let mut order = support::order(number, vec![line(1, "Seat", "S1", json!({})), line(2, "Seat", "S2", json!({}))]);
    dispatch::fulfill_order(runtime, &mut order).await.expect("dispatch runs");
    let after = module.call_stats();
    (
        after.calls - before.calls,
        after.failures - before.failures,
        after.traps - before.traps,
        after.timeouts - before.timeouts,
    )
}

#[tokio::test]
async fn call_stats_count_real_calls_traps_and_timeouts() {
    // A module that answers: one instantiation, one supports-lines for
    // both seats (1.1's batched claim), one fulfill-product; no fault.
    let answering = fixture("fail-odd", &[]).await;
    let module = answering.module("misbehaving").expect("loaded");
    let loaded = module.call_stats();
    assert_eq!((loaded.calls, loaded.failures), (2, 0), "loading instantiated it and called describe: {loaded:?}");
    assert!(loaded.p50_ms.is_some_and(|ms| ms > 0.0) && loaded.p99_ms >= loaded.p50_ms, "{loaded:?}");
    assert_eq!(dispatch_two_seats(&answering, "EDX-900").await, (3, 0, 0, 0));
    assert_eq!(module.stats().function(ModuleFunction::SupportsLines).calls, 1);
    assert_eq!(module.stats().function(ModuleFunction::SupportsLine).calls, 0, "a 1.1 module is never asked line by line");
    assert_eq!(module.stats().function(ModuleFunction::FulfillProduct).calls, 1);

    // A panic in fulfill-product: a trap.
    let trapping = fixture("trap-in-fulfill", &[]).await;
    assert_eq!(dispatch_two_seats(&trapping, "EDX-901").await, (3, 1, 1, 0));
    let faults = trapping.module("misbehaving").expect("loaded").stats().faults();
    assert!(faults.iter().any(|(cause, count)| cause.as_str() == "trap" && *count == 1), "{faults:?}");

    // A loop past its CPU time: a time-out, not a trap.
    let looping = fixture("loop", &[("cpu_ms", "100")]).await;
    assert_eq!(dispatch_two_seats(&looping, "EDX-902").await, (3, 1, 0, 1));

    // Out of memory: a trap, counted under its own kind.
    let greedy = fixture("memory-bomb", &[("memory_bytes", "8388608")]).await;
    assert_eq!(dispatch_two_seats(&greedy, "EDX-903").await, (3, 1, 1, 0));
    let faults = greedy.module("misbehaving").expect("loaded").stats().faults();
    assert!(faults.iter().any(|(cause, count)| cause.as_str() == "out-of-memory" && *count == 1), "{faults:?}");
}

#[tokio::test]
async fn the_modules_endpoint_shows_each_modules_calls() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (status, _) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, modules) = app.get("/modules", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{modules}");
    let modules = modules.as_array().expect("a list");
    let enrollment = modules.iter().find(|module| module["name"] == "enrollment").expect("enrollment");
    let calls = &enrollment["calls"];
    // describe and its store at load, then a store, supports-lines and
    // fulfill-product for the order's seat.
    assert_eq!((calls["calls"].as_u64(), calls["failures"].as_u64()), (Some(5), Some(0)), "{enrollment}");
    assert!(calls["p99_ms"].as_f64() >= calls["p50_ms"].as_f64() && calls["p50_ms"].as_f64().is_some(), "{calls}");
    let broken = modules.iter().find(|module| module["name"] == "broken").expect("the module that failed to load");
    assert_eq!(broken["calls"], Value::Null);
}
