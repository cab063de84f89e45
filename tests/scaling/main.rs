//! Asynchronous fulfillment with real `fulfillment-host` processes on one
//! PostgreSQL database: a host killed mid-fulfillment loses nothing and
//! fulfills nothing twice, and many hosts share the work of one queue. In
//! sync mode too: a host killed while a placed order's lines or an approved
//! refund's revocation are in flight leaves jobs that a restarted host
//! finishes, once. They need `FULFILLMENT_TEST_POSTGRES_URL` and say so when skipped.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fulfillment_tests::artifacts::module_path;
use fulfillment_tests::host_process::HostProcess;
use fulfillment_tests::lms::{LmsApi, LmsStandIn, credentials_toml};
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
{credentials}
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
        credentials = credentials_toml(&lms.url(), LmsApi::Enrollment, API_KEY, &dir.join("secrets")),
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
    // As it stands when the answer is read: a worker may be done already.
    assert!(matches!(order["status"].as_str(), Some("Open" | "Complete")), "{order}");
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
#[cfg_attr(no_postgres, ignore = "needs FULFILLMENT_TEST_POSTGRES_URL (scripts/test sets it)")]
async fn sigterm_lets_the_attempt_in_progress_finish_and_claims_nothing_more() {
    if postgres::postgres_url().is_none() {
        return;
    }
    let states = terminate_mid_attempt(Duration::from_millis(500), 10_000).await;
    assert_eq!(states, [("done".into(), 1, false), ("queued".into(), 0, false), ("queued".into(), 0, false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(no_postgres, ignore = "needs FULFILLMENT_TEST_POSTGRES_URL (scripts/test sets it)")]
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
#[cfg_attr(no_postgres, ignore = "needs FULFILLMENT_TEST_POSTGRES_URL (scripts/test sets it)")]
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
        "some line was sent again after the kill (and enrolled again harmlessly): {requests_per_key:?}"
    );
    let status = second.terminate(Duration::from_secs(30));
    assert!(status.success(), "the worker exits cleanly on SIGTERM: {status}");
}

/// An HTTP client that gives up on a host that does not answer (instead of
/// hanging the test).
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client")
}

/// GETs `path` of `host` as admin; the JSON of a 200.
async fn get_json(http: &reqwest::Client, host: &str, path: &str) -> Value {
    let response = http.get(format!("{host}{path}")).bearer_auth(TOKEN).send().await.expect("the host answers");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, reqwest::StatusCode::OK, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {path}: not JSON ({error}): {body}"))
}

/// Sends `request` as admin; its status and JSON body.
async fn send_json(request: reqwest::RequestBuilder) -> (reqwest::StatusCode, Value) {
    let response = request.bearer_auth(TOKEN).send().await.expect("the host answers");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let json = serde_json::from_str(&body).unwrap_or_else(|error| panic!("{status}: not JSON ({error}): {body}"));
    (status, json)
}

/// Places one order for `username` (a seat and a donation) on a host in
/// sync mode whose fulfillment outlasts `sync_wait_ms`: it must answer 202
/// with the order Open, fulfillment running, and the order's URL.
async fn place_outlasting_the_wait(http: &reqwest::Client, host: &str, username: &str) -> String {
    let body = json!({
        "user": {"username": username, "email": format!("{username}@example.com")},
        "basket": [{"sku": "SEAT", "quantity": 1}, {"sku": "DONATION", "quantity": 1}],
        "total": "59.00",
        "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    });
    let response =
        http.post(format!("{host}/api/v1/orders")).bearer_auth(TOKEN).json(&body).send().await.expect("the host answers");
    let status = response.status();
    let location = response.headers().get("location").and_then(|value| value.to_str().ok()).map(str::to_string);
    let order: Value = response.json().await.expect("an order");
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "fulfillment outlasts sync_wait_ms: {order:#}");
    assert_eq!(order["status"], "Open", "answered before fulfillment ended: {order:#}");
    assert_eq!(order["fulfillment_job"]["running"], true, "the job runs on: {order:#}");
    let number = order["number"].as_str().expect("a number").to_string();
    assert_eq!(location.as_deref(), Some(format!("/api/v1/orders/{number}").as_str()), "202 says where to look");
    number
}

/// Polls `GET path` of `host` until `done` says the JSON is what is
/// awaited (bounded by `limit`); panics with what it saw last.
async fn until_json(
    http: &reqwest::Client,
    host: &str,
    path: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let json = get_json(http, host, path).await;
        if done(&json) {
            return json;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}: GET {path} still says\n{json:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded by `limit`) until the LMS has received a request with
/// each of `keys` as its Idempotency-Key.
async fn until_lms_saw(lms: &LmsStandIn, keys: &[String], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let seen: HashSet<String> = lms.requests().into_iter().filter_map(|request| request.idempotency_key).collect();
        let missing: Vec<&String> = keys.iter().filter(|key| !seen.contains(*key)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "the LMS never received {missing:?} within {limit:?}; it received {seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How many requests the LMS received with Idempotency-Key `key`.
fn lms_requests_with_key(lms: &LmsStandIn, key: &str) -> usize {
    lms.requests().iter().filter(|request| request.idempotency_key.as_deref() == Some(key)).count()
}

async fn connect(database_url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::Connection::connect(database_url).await.expect("connect")
}

/// A job's state and attempts, as read through a LEFT JOIN.
type JobStateAndAttempts = (Option<String>, Option<i64>);

/// Every job of the database, one line each, for failure messages.
async fn all_jobs(database_url: &str) -> Vec<String> {
    let mut connection = connect(database_url).await;
    sqlx::query(
        "SELECT id, kind, subject_id, order_number, state, attempts, lease_owner, worked_by, last_error
         FROM jobs ORDER BY id",
    )
    .fetch_all(&mut connection)
    .await
    .expect("jobs")
    .iter()
    .map(|row| {
        format!(
            "job {} {} of {} (order {:?}): {} after {} attempt(s), lease {:?}, worked by {:?}, last error {:?}",
            row.get::<i64, _>("id"),
            row.get::<String, _>("kind"),
            row.get::<i64, _>("subject_id"),
            row.get::<Option<String>, _>("order_number"),
            row.get::<String, _>("state"),
            row.get::<i64, _>("attempts"),
            row.get::<Option<String>, _>("lease_owner"),
            row.get::<Option<String>, _>("worked_by"),
            row.get::<Option<String>, _>("last_error"),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(no_postgres, ignore = "needs FULFILLMENT_TEST_POSTGRES_URL (scripts/test sets it)")]
async fn kill_9_during_a_sync_mode_dispatch_loses_nothing_and_fulfills_nothing_twice() {
    let Some(url) = postgres::postgres_url() else { return };
    let database_url = postgres::fresh_schema(&url).await;
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    // The LMS enrolls, then answers only after 30 s: every seat is enrolled
    // at the LMS but its answer never reaches the first host.
    lms.delay_answers(Duration::from_secs(30));
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = write_settings_for(dir.path(), &database_url, &lms, Fulfillment::synchronous(300, 1_500));
    let http = client();

    let first = HostProcess::start(&settings, &["serve"]);
    let first_url = first.url.clone().expect("serve listens");
    let mut placing = tokio::task::JoinSet::new();
    for index in 0..4 {
        let (http, host) = (http.clone(), first_url.clone());
        placing.spawn(async move { place_outlasting_the_wait(&http, &host, &format!("sync-learner{index}")).await });
    }
    let mut numbers = Vec::new();
    while let Some(number) = placing.join_next().await {
        numbers.push(number.expect("placing task"));
    }
    numbers.sort();
    let seat_keys: Vec<String> = numbers.iter().map(|number| format!("{number}-1")).collect();
    until_lms_saw(&lms, &seat_keys, Duration::from_secs(15)).await;
    // Still in flight at the kill: every order Open, its job held by the
    // first host, nothing stored of the attempt.
    for number in &numbers {
        let order = get_json(&http, &first_url, &format!("/api/v1/orders/{number}")).await;
        assert!(
            order["status"] == "Open" && order["fulfillment_job"]["running"] == true,
            "the kill must come while {number} is being fulfilled (else this test proves nothing): {order:#}"
        );
    }
    first.kill_hard();
    lms.heal();

    let second = HostProcess::start(&settings, &["serve"]);
    let second_url = second.url.clone().expect("serve listens");
    for number in &numbers {
        let path = format!("/api/v1/orders/{number}");
        let what = format!("order {number} Complete after the restart");
        // Until the order leaves Open, or its job ends without it. (Not
        // "until the job is done": the view reads the order and its job
        // apart, so a GET during the commit can show the job done and the
        // order still Open.)
        let order = until_json(&http, &second_url, &path, Duration::from_secs(20), &what, |order| {
            order["status"] != "Open" || ["failed", "gave-up"].contains(&order["fulfillment_job"]["state"].as_str().unwrap_or(""))
        })
        .await;
        assert_eq!(order["status"], "Complete", "{number} after the restart: {order:#}\njobs: {:#?}", all_jobs(&database_url).await);
        assert_eq!(order["fulfillment_job"]["state"], "done", "{order:#}");
        let statuses: Vec<&Value> = order["lines"].as_array().expect("lines").iter().map(|line| &line["status"]).collect();
        assert_eq!(statuses, [&json!("Complete"), &json!("Complete")], "{order:#}");
    }

    // The LMS: each seat sent by both hosts (so the second one did the
    // work again), enrolled once (the second request found the enrollment
    // made and changed nothing, as the LMS does).
    for key in &seat_keys {
        assert_eq!(lms.fulfillments_for_key(key), 1, "seat line {key} enrolled once at the LMS; by key: {:?}", lms.fulfillments_by_key());
        assert_eq!(lms_requests_with_key(&lms, key), 2, "seat line {key} sent once by each host");
    }
    assert_each_seat_fulfilled_once(&lms, &numbers);

    // The database: no payment without its order; one `fulfill` job per
    // order, done, in two attempts (the one the kill cut short counts).
    let mut connection = connect(&database_url).await;
    let orphans: Vec<i64> = sqlx::query_scalar(
        "SELECT sources.id FROM payment_sources sources
         WHERE EXISTS (SELECT 1 FROM payment_events events
                       WHERE events.payment_source_id = sources.id AND events.event_type = 'Paid')
           AND NOT EXISTS (SELECT 1 FROM orders WHERE orders.payment_source_id = sources.id)
         ORDER BY sources.id",
    )
    .fetch_all(&mut connection)
    .await
    .expect("paid sources");
    assert!(orphans.is_empty(), "paid payment sources without an order: {orphans:?}");
    let rows = sqlx::query(
        "SELECT orders.number, jobs.state, jobs.attempts FROM orders
         LEFT JOIN jobs ON jobs.kind = 'fulfill' AND jobs.subject_id = orders.id
         ORDER BY orders.number, jobs.id",
    )
    .fetch_all(&mut connection)
    .await
    .expect("orders and their jobs");
    let mut jobs_by_order: BTreeMap<String, Vec<JobStateAndAttempts>> = BTreeMap::new();
    for row in &rows {
        jobs_by_order.entry(row.get("number")).or_default().push((row.get("state"), row.get("attempts")));
    }
    let expected: BTreeMap<String, Vec<JobStateAndAttempts>> =
        numbers.iter().map(|number| (number.clone(), vec![(Some("done".to_string()), Some(2))])).collect();
    assert_eq!(
        jobs_by_order,
        expected,
        "each order has one `fulfill` job, done in 2 attempts; jobs: {:#?}",
        all_jobs(&database_url).await
    );
    let status = second.terminate(Duration::from_secs(30));
    assert!(status.success(), "the second host exits cleanly on SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(no_postgres, ignore = "needs FULFILLMENT_TEST_POSTGRES_URL (scripts/test sets it)")]
async fn kill_9_during_a_refund_credits_once_and_revokes_after_the_restart() {
    let Some(url) = postgres::postgres_url() else { return };
    let database_url = postgres::fresh_schema(&url).await;
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = write_settings_for(dir.path(), &database_url, &lms, Fulfillment::synchronous(300, 1_500));
    let http = client();
    let username = "refund-learner";

    let first = HostProcess::start(&settings, &["serve"]);
    let first_url = first.url.clone().expect("serve listens");
    let body = json!({
        "user": {"username": username, "email": format!("{username}@example.com")},
        "basket": [{"sku": "SEAT", "quantity": 1}, {"sku": "DONATION", "quantity": 1}],
        "total": "59.00",
        "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    });
    let (status, order) = send_json(http.post(format!("{first_url}/api/v1/orders")).json(&body)).await;
    assert!(
        status == reqwest::StatusCode::CREATED || status == reqwest::StatusCode::ACCEPTED,
        "placed: {status} {order:#}"
    );
    let number = order["number"].as_str().expect("a number").to_string();
    let order_path = format!("/api/v1/orders/{number}");
    let order = until_json(&http, &first_url, &order_path, Duration::from_secs(15), "the order Complete", |order| {
        order["status"] != "Open"
    })
    .await;
    assert_eq!(order["status"], "Complete", "{order:#}");
    let seat_price = order["lines"][0]["line_price"].clone();
    assert_eq!(seat_price, "49.00", "line 1 is the seat: {order:#}");
    assert_eq!(lms.enrollment(username, COURSE).map(|enrollment| enrollment.is_active), Some(true));

    let (status, refund) = send_json(
        http.post(format!("{first_url}/api/v1/refunds")).json(&json!({"order_number": number, "line_ids": [1]})),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "refund created: {refund:#}");
    assert_eq!(refund["status"], "Open", "{refund:#}");
    let id = refund["id"].as_i64().expect("a refund id");
    let refund_path = format!("/api/v1/refunds/{id}");

    // The LMS deactivates, then answers only after 30 s: the revocation is
    // in flight when the host dies.
    lms.delay_answers(Duration::from_secs(30));
    let (status, processed) =
        send_json(http.put(format!("{first_url}{refund_path}/process")).json(&json!({"action": "approve"}))).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "approval outlasts sync_wait_ms: {processed:#}");
    let revoke_key = format!("{number}-1-revoke");
    until_lms_saw(&lms, std::slice::from_ref(&revoke_key), Duration::from_secs(15)).await;
    let before = get_json(&http, &first_url, &refund_path).await;
    assert!(
        before["status"] == "Payment Refunded" && before["credit"] == "done" && before["lines"][0]["status"] == "Open",
        "the kill must come after the credit and during the revocation (else this test proves something else): {before:#}"
    );
    first.kill_hard();
    lms.heal();

    let second = HostProcess::start(&settings, &["serve"]);
    let second_url = second.url.clone().expect("serve listens");
    let refund = until_json(&http, &second_url, &refund_path, Duration::from_secs(20), "the refund Complete", |refund| {
        refund["status"] != "Payment Refunded"
    })
    .await;
    let jobs = all_jobs(&database_url).await;
    assert_eq!(refund["status"], "Complete", "after the restart: {refund:#}\njobs: {jobs:#?}");
    assert_eq!(refund["credit"], "done", "{refund:#}");
    assert_eq!(refund["lines"][0]["status"], "Complete", "{refund:#}");

    // Credited once: one `Refunded` event of the seat's price on the
    // order's payment source.
    let mut connection = connect(&database_url).await;
    let refunded: Vec<i64> = sqlx::query_scalar(
        "SELECT events.amount_minor FROM payment_events events
         JOIN orders ON orders.payment_source_id = events.payment_source_id
         WHERE orders.number = $1 AND events.event_type = 'Refunded'
         ORDER BY events.id",
    )
    .bind(number.as_str())
    .fetch_all(&mut connection)
    .await
    .expect("payment events");
    assert_eq!(refunded, [4_900], "one `Refunded` payment event of the seat's price; jobs: {jobs:#?}");
    let refund_jobs: Vec<(String, i64)> =
        sqlx::query("SELECT state, attempts FROM jobs WHERE kind = 'refund' AND subject_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut connection)
            .await
            .expect("refund jobs")
            .iter()
            .map(|row| (row.get("state"), row.get("attempts")))
            .collect();
    assert_eq!(refund_jobs, [("done".to_string(), 2)], "one refund job, done in 2 attempts; jobs: {jobs:#?}");
    let order = get_json(&http, &second_url, &order_path).await;
    assert_eq!(order["payment"]["refunded"], seat_price, "the order's payment shows the credit: {order:#}");

    // The LMS: deactivated, and asked again by the second host.
    assert_eq!(
        lms.enrollment(username, COURSE).map(|enrollment| enrollment.is_active),
        Some(false),
        "the seat's enrollment is deactivated at the LMS"
    );
    let deactivations: Vec<_> = lms
        .requests()
        .into_iter()
        .filter(|request| request.idempotency_key.as_deref() == Some(revoke_key.as_str()))
        .map(|request| request.body)
        .collect();
    assert_eq!(deactivations.len(), 2, "the revocation was sent by each host: {deactivations:#?}");
    assert!(deactivations.iter().all(|body| body["is_active"] == false), "{deactivations:#?}");
    let status = second.terminate(Duration::from_secs(30));
    assert!(status.success(), "the second host exits cleanly on SIGTERM: {status}");
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
#[cfg_attr(no_postgres, ignore = "needs FULFILLMENT_TEST_POSTGRES_URL (scripts/test sets it)")]
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

/// A host that dies between the charge and the order (a fail point aborts
/// it there) leaves a paid checkout; the next host makes its order from the
/// checkout's record without charging again, and a replay of the key
/// returns it. On a SQLite file, and on PostgreSQL when configured.
async fn a_host_dead_between_charge_and_order_leaves_a_checkout_the_next_host_completes(database_url: String) {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = write_settings_for(dir.path(), &database_url, &lms, Fulfillment::synchronous(5_000, 1_500));
    let mut text = std::fs::read_to_string(&settings).expect("settings");
    text.push_str("\n[orders]\ncheckout_grace_ms = 200\n\n[payments]\ntest_ledger = \"ledger.jsonl\"\n");
    std::fs::write(&settings, text).expect("settings");
    let ledger = fulfillment_host::payments::Payments::with_ledger_file(dir.path().join("ledger.jsonl"));
    // With both addresses and a shipping charge: the order made from the
    // record must have them as the direct one would.
    let billing_address = json!({"first_name": "Crash", "last_name": "Test", "line1": "1 Main St", "city": "Cambridge",
        "state": "MA", "postcode": "02139", "country": "US"});
    let shipping_address = json!({"first_name": "Crash", "line1": "10 Downing St", "city": "London",
        "postcode": "SW1A 2AA", "country": "GB", "phone_number": "+44 20 7925 0918"});
    let body = json!({
        "user": {"username": "crash", "email": "crash@example.com"},
        "basket": [{"sku": "SEAT", "quantity": 1}, {"sku": "DONATION", "quantity": 1}],
        "shipping_method": "royal-mail",
        "shipping_charge": "5.00",
        "billing_address": billing_address.clone(),
        "shipping_address": shipping_address.clone(),
        "total": "64.00",
        "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    });
    let http = client();

    let mut first = HostProcess::start_with_env(&settings, &["serve"], &[("FAILPOINTS", "checkout-after-charge=return")]);
    let first_url = first.url.clone().expect("serve listens");
    let sent = http
        .post(format!("{first_url}/api/v1/orders"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "crash-1")
        .json(&body)
        .send()
        .await;
    assert!(sent.is_err(), "the host died before it could answer: {sent:?}");
    assert!(!first.wait_exit(Duration::from_secs(10)).success(), "the host aborted");
    let charges = ledger.ledger();
    assert_eq!(charges.len(), 1, "the processor charged once: {charges:?}");
    let mut connection = connect(&database_url).await;
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(&mut connection).await.expect("orders");
    let state: String = sqlx::query_scalar("SELECT state FROM checkouts").fetch_one(&mut connection).await.expect("checkout");
    assert_eq!((orders, state.as_str()), (0, "pending"), "the charge went through, the order was never stored");

    let second = HostProcess::start(&settings, &["serve"]);
    let second_url = second.url.clone().expect("serve listens");
    let (status, order) = send_json(http.post(format!("{second_url}/api/v1/orders")).header("Idempotency-Key", "crash-1").json(&body)).await;
    assert_eq!(status, reqwest::StatusCode::OK, "the replay finds the order made from the record: {order:#}\n{:#?}", all_jobs(&database_url).await);
    assert_eq!(order["payment"]["reference"], json!(charges[0].reference), "{order:#}");
    let number = order["number"].as_str().expect("a number").to_string();
    let order = until_json(&http, &second_url, &format!("/api/v1/orders/{number}"), Duration::from_secs(20), "the order completes", |order| {
        order["status"] == "Complete"
    })
    .await;
    assert_eq!(order["fulfillment_job"]["state"], "done", "{order:#}");
    assert_eq!((&order["billing_address"], &order["shipping_address"]), (&billing_address, &shipping_address), "{order:#}");
    assert_eq!((&order["shipping_method"], &order["shipping_charge"]), (&json!("royal-mail"), &json!("5.00")), "{order:#}");
    assert_eq!(ledger.ledger().len(), 1, "never charged again");
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM payment_sources
         WHERE EXISTS (SELECT 1 FROM payment_events WHERE payment_source_id = payment_sources.id AND event_type = 'Paid')
           AND NOT EXISTS (SELECT 1 FROM orders WHERE payment_source_id = payment_sources.id)",
    )
    .fetch_one(&mut connection)
    .await
    .expect("paid sources");
    assert_eq!(orphans, 0, "every payment has its order");
    assert_eq!(lms.fulfillments_for_key(&format!("{number}-1")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the host's fail points: --features fulfillment-tests/failpoints (scripts/test sets it)")]
async fn a_checkout_dead_after_its_charge_becomes_an_order_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("orders.db").display());
    a_host_dead_between_charge_and_order_leaves_a_checkout_the_next_host_completes(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    any(no_postgres, not(feature = "failpoints")),
    ignore = "needs FULFILLMENT_TEST_POSTGRES_URL and the host's fail points (scripts/test sets both)"
)]
async fn a_checkout_dead_after_its_charge_becomes_an_order_on_postgres() {
    let url = postgres::postgres_url().expect("FULFILLMENT_TEST_POSTGRES_URL is set");
    a_host_dead_between_charge_and_order_leaves_a_checkout_the_next_host_completes(postgres::fresh_schema(&url).await).await;
}

/// A host whose modules call the LMS with the host's credentials (the API
/// key for enrollment, an OAuth2 JWT for entitlements), logging everything
/// at debug level: neither its log nor its API answers ever carry a secret.
#[tokio::test]
async fn secrets_reach_the_lms_but_never_the_log_or_the_api() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = lms.url();
    let secrets = dir.path().join("secrets");
    let settings = format!(
        r#"[[modules]]
name = "enrollment"
path = {enrollment:?}
allowed_hosts = ["{url}"]
[modules.config]
lms_url = "{url}"
{enrollment_credentials}
[[modules]]
name = "course-entitlement"
path = {entitlement:?}
allowed_hosts = ["{url}"]
[modules.config]
lms_url = "{url}"
{entitlement_credentials}
[server]
bind = "127.0.0.1:0"

[database]
url = "sqlite://{database}"

[[api.tokens]]
name = "admin"
sha256 = "{token_sha256}"
role = "admin"

{products}
[[products]]
sku = "ENT"
product_type = "Course Entitlement"
title = "Entitlement"
price = "100.00"
currency = "USD"
attributes = {{ UUID = "course-uuid-1", certificate_type = "verified" }}
"#,
        enrollment = module_path("enrollment").display().to_string(),
        entitlement = module_path("course-entitlement").display().to_string(),
        enrollment_credentials = credentials_toml(&url, LmsApi::Enrollment, API_KEY, &secrets),
        entitlement_credentials = credentials_toml(&url, LmsApi::Entitlements, API_KEY, &secrets),
        database = dir.path().join("orders.db").display(),
        token_sha256 = fulfillment_host::api::token_digest(TOKEN),
        products = fulfillment_tests::catalog::seat_and_donation(COURSE),
    );
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, settings).expect("write settings");
    let host = HostProcess::start_with_env(&path, &["serve"], &[("RUST_LOG", "debug,fulfillment_host=trace")]);
    let base = host.url.clone().expect("serving");
    let http = client();
    let body = json!({
        "user": {"username": "alice", "email": "alice@example.com"},
        "basket": [{"sku": "SEAT", "quantity": 1}, {"sku": "ENT", "quantity": 1}],
        "total": "149.00",
        "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    });
    let (status, order) = send_json(http.post(format!("{base}/api/v1/orders")).bearer_auth(TOKEN).json(&body)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{order:#}");
    assert_eq!(order["status"], "Complete", "{order:#}");
    let jwt = lms
        .requests()
        .into_iter()
        .find_map(|request| request.authorization)
        .expect("the entitlement request carried a JWT");
    let jwt = jwt.trim_start_matches("JWT ").to_string();
    let mut answers = vec![order.to_string()];
    for path in ["/api/v1/modules", "/api/v1/orders", "/readyz"] {
        answers.push(get_json(&http, &base, path).await.to_string());
    }
    let (exit, log) = host.terminate_and_read_log(Duration::from_secs(30));
    assert!(exit.success(), "{exit}");
    assert!(log.iter().any(|line| line.contains("fetched an OAuth2 access token")), "the log is the host's debug log");
    assert!(log.iter().any(|line| line.contains("listening on")), "the log from the start");
    let secrets = [API_KEY, fulfillment_tests::lms::CLIENT_SECRET, jwt.as_str()];
    for text in answers.iter().chain(log.iter()) {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in `{text}`");
        }
    }
}

/// A handler that panics (a fail point in `/healthz`) answers 500 in the
/// API's error shape, and the host goes on answering.
#[tokio::test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs the host's fail points: --features fulfillment-tests/failpoints (scripts/test sets it)")]
async fn a_panicking_handler_answers_500_in_the_error_shape() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("orders.db").display());
    let settings = write_settings_for(dir.path(), &database_url, &lms, Fulfillment::asynchronous(1, 60_000));
    let host = HostProcess::start_with_env(&settings, &["serve"], &[("FAILPOINTS", "api-healthz-panic=panic")]);
    let base = host.url.clone().expect("serving");
    let http = client();
    let (status, body) = send_json(http.get(format!("{base}/healthz"))).await;
    assert_eq!(status, reqwest::StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let ready = get_json(&http, &base, "/readyz").await;
    assert_eq!(ready["database"], true, "the host goes on: {ready}");
}
