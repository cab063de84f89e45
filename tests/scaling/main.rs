//! Asynchronous fulfillment with real `fulfillment-host` processes on one
//! PostgreSQL database: a host killed mid-fulfillment loses nothing and
//! fulfills nothing twice, and many hosts share the work of one queue.
//! They need `FULFILLMENT_TEST_POSTGRES_URL` and say so when skipped.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fulfillment_tests::artifacts::module_path;
use fulfillment_tests::host_process::HostProcess;
use fulfillment_tests::lms::LmsStandIn;
use fulfillment_tests::postgres;
use serde_json::{Value, json};
use sqlx::Row;

const API_KEY: &str = "scaling-api-key";
const TOKEN: &str = "scaling-admin-token";
const COURSE: &str = "course-v1:edX+Scale+2026";

/// `[fulfillment]` of a test host.
#[derive(Debug, Clone, Copy)]
struct Fulfillment {
    /// "sync" or "async".
    mode: &'static str,
    workers: u32,
    lease_ms: u64,
    shutdown_grace_ms: u64,
    sync_wait_ms: u64,
}

impl Fulfillment {
    /// Async mode: `workers` workers, leases of `lease_ms`.
    fn asynchronous(workers: u32, lease_ms: u64) -> Fulfillment {
        Fulfillment {
            mode: "async",
            workers,
            lease_ms,
            shutdown_grace_ms: 10_000,
            sync_wait_ms: 25_000,
        }
    }

    /// Sync mode: a request waits `sync_wait_ms` for the job it started;
    /// leases of `lease_ms` (the workers take over a dead host's jobs).
    fn synchronous(sync_wait_ms: u64, lease_ms: u64) -> Fulfillment {
        Fulfillment {
            mode: "sync",
            workers: 4,
            lease_ms,
            shutdown_grace_ms: 10_000,
            sync_wait_ms,
        }
    }
}

/// A settings file for a host in async mode on `database_url`, with the
/// enrollment module calling `lms` and the donation module.
fn write_settings(dir: &Path, database_url: &str, lms: &LmsStandIn, workers: u32, lease_ms: u64) -> std::path::PathBuf {
    write_settings_for(dir, database_url, lms, Fulfillment::asynchronous(workers, lease_ms))
}

fn write_settings_with_grace(
    dir: &Path,
    database_url: &str,
    lms: &LmsStandIn,
    workers: u32,
    lease_ms: u64,
    shutdown_grace_ms: u64,
) -> std::path::PathBuf {
    let fulfillment = Fulfillment {
        shutdown_grace_ms,
        ..Fulfillment::asynchronous(workers, lease_ms)
    };
    write_settings_for(dir, database_url, lms, fulfillment)
}

/// A settings file for a host on `database_url` with `fulfillment`, the
/// enrollment module calling `lms` and the donation module.
fn write_settings_for(dir: &Path, database_url: &str, lms: &LmsStandIn, fulfillment: Fulfillment) -> std::path::PathBuf {
    let Fulfillment {
        mode,
        workers,
        lease_ms,
        shutdown_grace_ms,
        sync_wait_ms,
    } = fulfillment;
    let token_sha256 = fulfillment_host::api::token_digest(TOKEN);
    let settings = format!(
        r#"[[modules]]
name = "enrollment"
path = {enrollment:?}
allowed_hosts = ["{lms}"]
[modules.config]
lms_url = "{lms}"
api_key = "{API_KEY}"

[[modules]]
name = "donation"
path = {donation:?}

[server]
bind = "127.0.0.1:0"

[database]
url = "{database_url}"
max_connections = 8

[fulfillment]
mode = "{mode}"
workers = {workers}
backoff_base_ms = 50
lease_ms = {lease_ms}
poll_ms = 50
shutdown_grace_ms = {shutdown_grace_ms}
sync_wait_ms = {sync_wait_ms}

[[api.tokens]]
name = "admin"
sha256 = "{token_sha256}"
role = "admin"

{products}"#,
        enrollment = module_path("enrollment").display().to_string(),
        donation = module_path("donation").display().to_string(),
        lms = lms.url(),
        products = fulfillment_tests::catalog::seat_and_donation(COURSE),
    );
    let path = dir.join("settings.toml");
    std::fs::write(&path, settings).expect("write settings");
    path
}

/// Places one order for learner `username` (a seat and a donation) through
/// `host`; returns its number.
async fn place(http: &reqwest::Client, host: &str, username: &str) -> String {
    let body = json!({
        "user": {"username": username, "email": format!("{username}@example.com")},
        "basket": [{"sku": "SEAT", "quantity": 1}, {"sku": "DONATION", "quantity": 1}],
        "total": "59.00",
        "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    });
    let response = http
        .post(format!("{host}/api/v1/orders"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("the host answers");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let order: Value = response.json().await.expect("an order");
    assert_eq!(order["status"], "Open");
    order["number"].as_str().expect("a number").to_string()
}

/// Places `count` orders spread over `hosts`, at most 16 at a time.
async fn place_many(hosts: &[String], count: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(16));
    let mut placing = tokio::task::JoinSet::new();
    for index in 0..count {
        let (http, host, in_flight) = (http.clone(), hosts[index % hosts.len()].clone(), in_flight.clone());
        placing.spawn(async move {
            let _slot = in_flight.acquire_owned().await.expect("semaphore");
            place(&http, &host, &format!("learner{index}")).await
        });
    }
    let mut numbers = Vec::with_capacity(count);
    while let Some(number) = placing.join_next().await {
        numbers.push(number.expect("placing task"));
    }
    numbers
}

/// One host with one worker, the LMS answering each enrollment after
/// `answer_delay`, three orders placed, SIGTERM once the first enrollment
/// reached the LMS; returns the jobs after the host exited cleanly.
async fn terminate_mid_attempt(answer_delay: Duration, shutdown_grace_ms: u64) -> Vec<(String, i64, bool)> {
    let url = postgres::postgres_url().expect("checked by the caller");
    let database_url = postgres::fresh_schema(&url).await;
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    lms.delay_answers(answer_delay);
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = write_settings_with_grace(dir.path(), &database_url, &lms, 1, 30_000, shutdown_grace_ms);
    let host = HostProcess::start(&settings, &["serve"]);
    let numbers = place_many(&[host.url.clone().expect("serve listens")], 3).await;
    assert_eq!(numbers.len(), 3);
    let deadline = Instant::now() + Duration::from_secs(30);
    while lms.requests().is_empty() {
        assert!(Instant::now() < deadline, "the host never called the LMS");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = host.terminate(Duration::from_secs(30));
    assert!(status.success(), "exits cleanly on SIGTERM: {status}");
    // (state, attempts, whether a lease is held), sorted: which order a
    // worker took first is not fixed.
    let mut states: Vec<(String, i64, bool)> =
        jobs(&database_url).await.into_iter().map(|job| (job.state, job.attempts, job.lease_owner.is_some())).collect();
    states.sort();
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_the_attempt_in_progress_finish_and_claims_nothing_more() {
    if postgres::postgres_url().is_none() {
        return;
    }
    let states = terminate_mid_attempt(Duration::from_millis(500), 10_000).await;
    assert_eq!(states, [("done".into(), 1, false), ("queued".into(), 0, false), ("queued".into(), 0, false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_abandons_an_attempt_past_the_grace_period_and_releases_its_lease() {
    if postgres::postgres_url().is_none() {
        return;
    }
    let states = terminate_mid_attempt(Duration::from_secs(30), 200).await;
    // Nothing stored but the started attempt, no lease left: another host
    // takes all three at once.
    assert_eq!(states, [("queued".into(), 0, false), ("queued".into(), 0, false), ("queued".into(), 1, false)]);
}

/// A `fulfill` row of `jobs`.
#[derive(Debug)]
struct Job {
    number: String,
    state: String,
    attempts: i64,
    lease_owner: Option<String>,
    worked_by: Option<String>,
}

/// The `fulfill` jobs of the database, oldest first.
async fn jobs(database_url: &str) -> Vec<Job> {
    sqlx::any::install_default_drivers();
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(database_url).await.expect("connect");
    sqlx::query("SELECT order_number, state, attempts, lease_owner, worked_by FROM jobs WHERE kind = 'fulfill' ORDER BY id")
        .fetch_all(&mut connection)
        .await
        .expect("jobs")
        .iter()
        .map(|row| Job {
            number: row.get("order_number"),
            state: row.get("state"),
            attempts: row.get("attempts"),
            lease_owner: row.get("lease_owner"),
            worked_by: row.get("worked_by"),
        })
        .collect()
}

/// Waits until every job is `done` (bounded by `limit`).
async fn until_all_done(database_url: &str, expected: usize, limit: Duration) -> Vec<Job> {
    let deadline = Instant::now() + limit;
    loop {
        let jobs = jobs(database_url).await;
        if jobs.len() == expected && jobs.iter().all(|job| job.state == "done") {
            return jobs;
        }
        let open: Vec<_> = jobs.iter().filter(|job| job.state != "done").take(5).collect();
        assert!(Instant::now() < deadline, "{} of {expected} jobs are not done, e.g. {open:?}", jobs.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every order's seat was enrolled exactly once at the LMS, under its own
/// line key, and nothing else was.
fn assert_each_seat_fulfilled_once(lms: &LmsStandIn, numbers: &[String]) {
    let by_key: BTreeMap<String, usize> = lms.fulfillments_by_key().into_iter().collect();
    let expected: HashSet<String> = numbers.iter().map(|number| format!("{number}-1")).collect();
    let fulfilled: HashSet<String> = by_key.keys().cloned().collect();
    assert_eq!(fulfilled, expected, "the LMS fulfilled exactly the orders' seat lines");
    let twice: Vec<_> = by_key.iter().filter(|(_, count)| **count != 1).collect();
    assert!(twice.is_empty(), "lines fulfilled more than once: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_killed_mid_fulfillment_loses_nothing_and_fulfills_nothing_twice() {
    let Some(url) = postgres::postgres_url() else { return };
    let database_url = postgres::fresh_schema(&url).await;
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    // The LMS enrolls, then takes 300 ms to answer: a host killed meanwhile
    // has fulfilled lines it never stored.
    lms.delay_answers(Duration::from_millis(300));
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = write_settings(dir.path(), &database_url, &lms, 4, 1_500);

    let first = HostProcess::start(&settings, &["serve"]);
    let first_url = first.url.clone().expect("serve listens");
    let numbers = place_many(&[first_url], 20).await;
    // Kill it while the LMS is answering its first enrollments: some are
    // done at the LMS but not yet stored, some not started.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lms.requests().len() < 3 {
        assert!(Instant::now() < deadline, "the first host never called the LMS");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill_hard();
    let stored_before_restart = jobs(&database_url).await;
    assert_eq!(stored_before_restart.len(), 20, "every placed order has its job");
    assert!(
        stored_before_restart.iter().any(|job| job.state != "done"),
        "the kill came before the first host finished (else this test proves nothing)"
    );

    // The jobs are taken over by a worker process (no HTTP API).
    let mut second = HostProcess::start(&settings, &["worker"]);
    second.wait_for_line("running 4 workers until SIGTERM", Duration::from_secs(60));
    let jobs = until_all_done(&database_url, 20, Duration::from_secs(60)).await;
    assert_eq!(jobs.iter().map(|job| job.number.clone()).collect::<HashSet<_>>(), numbers.iter().cloned().collect());
    assert_each_seat_fulfilled_once(&lms, &numbers);
    let mut requests_per_key: BTreeMap<String, usize> = BTreeMap::new();
    for request in lms.requests() {
        *requests_per_key.entry(request.idempotency_key.unwrap_or_default()).or_default() += 1;
    }
    assert!(
        requests_per_key.values().any(|count| *count > 1),
        "some line was sent again after the kill (and replayed by the LMS): {requests_per_key:?}"
    );
    let status = second.terminate(Duration::from_secs(30));
    assert!(status.success(), "the worker exits cleanly on SIGTERM: {status}");
}

/// Runs `orders` orders through `hosts` host processes; returns the orders
/// per second from the first placement to the last completion.
async fn run_hosts(hosts: usize, orders: usize) -> f64 {
    let url = postgres::postgres_url().expect("checked by the caller");
    let database_url = postgres::fresh_schema(&url).await;
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = write_settings(dir.path(), &database_url, &lms, 4, 30_000);
    let processes: Vec<HostProcess> = (0..hosts).map(|_| HostProcess::start(&settings, &["serve"])).collect();
    let urls: Vec<String> = processes.iter().map(|process| process.url.clone().expect("serve listens")).collect();

    let started = Instant::now();
    let numbers = place_many(&urls, orders).await;
    let placed = started.elapsed();
    let jobs = until_all_done(&database_url, orders, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    assert_each_seat_fulfilled_once(&lms, &numbers);

    // One claim per job: a claim that took more jobs than it ran would show
    // here as a second attempt (after the first lease ran out).
    let reclaimed: Vec<_> = jobs.iter().filter(|job| job.attempts != 1).take(5).collect();
    assert!(reclaimed.is_empty(), "jobs claimed more than once: {reclaimed:?}");
    let mut per_host: BTreeMap<String, usize> = BTreeMap::new();
    for job in &jobs {
        *per_host.entry(job.worked_by.clone().unwrap_or_default()).or_default() += 1;
    }
    println!(
        "{hosts} host(s), {orders} orders: {:.0} orders/s ({} ms; all placed after {} ms), jobs per host {:?}",
        orders as f64 / elapsed.as_secs_f64(),
        elapsed.as_millis(),
        placed.as_millis(),
        per_host.values().collect::<Vec<_>>()
    );
    assert_eq!(per_host.len(), hosts, "every host worked: {per_host:?}");
    for (host, count) in &per_host {
        assert!(*count * hosts * 5 >= orders, "host {host} did {count} of {orders} jobs: the work is not spread");
    }
    for process in processes {
        assert!(process.terminate(Duration::from_secs(30)).success());
    }
    orders as f64 / elapsed.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hosts_on_one_database_fulfill_a_thousand_orders_exactly_once() {
    if postgres::postgres_url().is_none() {
        return;
    }
    run_hosts(3, 1_000).await;
}

/// The figures of docs/scaling.md: one host, then three, in the same run.
/// `cargo test --release -p fulfillment-tests --test scaling -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, not a test: run it by name for docs/scaling.md"]
async fn throughput_of_one_host_and_of_three() {
    if postgres::postgres_url().is_none() {
        return;
    }
    let one = run_hosts(1, 2_000).await;
    let three = run_hosts(3, 2_000).await;
    println!("three hosts / one host: {:.2}x", three / one);
}
