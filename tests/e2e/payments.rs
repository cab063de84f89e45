//! Payment references and tokens (issue 10), over real HTTP on both
//! databases: references stay unique when a host restarts its processor;
//! a payment token never shows in a reference, an answer, the database or
//! the logs; a refused payment leaves its source marked refused.

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};

use fulfillment_host::app::Application;
use reqwest::StatusCode;

use crate::harness::{ADMIN_TOKEN, CHECKOUT_TOKEN, Db, TestApp, checkout};
use crate::{on_both_databases, support};

on_both_databases!(
    references_stay_unique_when_a_host_restarts_its_processor,
    a_payment_token_never_shows_in_answers_records_or_logs,
    a_refused_payment_leaves_its_source_marked_refused,
);

/// Everything this test binary logs, from the moment the first test here
/// asks for it (a process has one global subscriber; the other tests'
/// lines land here too, which is harmless: each test looks for a token of
/// its own).
static LOGS: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(|| {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = buffer.clone();
    let installed = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(move || LogWriter(writer.clone()))
        .try_init();
    assert!(installed.is_ok(), "the log capture is the only subscriber of the e2e binary");
    buffer
});

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_owned()
}

/// Every text of the tables a checkout writes, as one string.
async fn database_text(app: &TestApp) -> String {
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    let mut text = String::new();
    for sql in [
        "SELECT processor || ' ' || reference || ' ' || state FROM payment_sources",
        "SELECT event_type || ' ' || reference FROM payment_events",
        "SELECT request || ' ' || COALESCE(failure, '') FROM checkouts",
        "SELECT message FROM order_notes",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut connection).await.expect(sql);
        text.push_str(&rows.join("\n"));
        text.push('\n');
    }
    text
}

/// A second host on `app`'s database, with a test processor of its own
/// (in memory: as a host that restarted), serving on a port of its own.
async fn second_host(app: &TestApp) -> String {
    let toml = crate::harness::host_toml(&app.lms.url(), &app.database_url, 4, "");
    let second = Application::build_with(&support::settings(&toml), support::engine()).await.expect("the second host builds");
    let base = format!("http://{}/api/v1", second.local_addr().expect("bound"));
    tokio::spawn(second.run_until(std::future::pending()));
    base
}

async fn references_stay_unique_when_a_host_restarts_its_processor(db: Db) {
    let app = TestApp::spawn(db).await;
    let second = second_host(&app).await;
    let mut references = Vec::new();
    for base in [&app.base, &second, &app.base, &second] {
        let request = app.http.post(format!("{base}/orders")).json(&checkout("59.00", "tok_success"));
        let (status, order) = app.send(request, Some(CHECKOUT_TOKEN)).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let reference = order["payment"]["reference"].as_str().expect("a reference").to_string();
        assert!(reference.starts_with("test_ch_"), "{reference}");
        references.push(reference);
    }
    let mut distinct = references.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), references.len(), "two hosts' processors gave the same reference: {references:?}");
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    let (all, unique): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT reference) FROM payment_sources WHERE state = 'paid'")
            .fetch_one(&mut connection)
            .await
            .expect("count references");
    assert_eq!((all, unique), (4, 4));
}

async fn a_payment_token_never_shows_in_answers_records_or_logs(db: Db) {
    let logs_before = logs().len();
    let app = TestApp::spawn(db).await;
    let secret = format!("{:016x}", token_seed());
    let accepted = format!("tok_success_{secret}");
    let refused = format!("tok_{secret}");

    let (status, order) = app.place(&checkout("59.00", &accepted), Some(&format!("paid-{secret}"))).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let number = order["number"].as_str().expect("a number").to_string();
    let (status, declined) = app.place(&checkout("59.00", &refused), Some(&format!("declined-{secret}"))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{declined}");
    assert_eq!(declined["error"]["code"], "payment_declined", "{declined}");

    let mut answers = vec![order.clone(), declined];
    answers.push(app.get(&format!("/orders/{number}"), ADMIN_TOKEN).await.1);
    answers.push(app.get("/orders", ADMIN_TOKEN).await.1);
    // A replay answers the order again.
    answers.push(app.place(&checkout("59.00", &accepted), Some(&format!("paid-{secret}"))).await.1);
    for answer in &answers {
        assert!(!answer.to_string().contains(&secret), "an answer shows the payment token: {answer}");
    }
    let stored = database_text(&app).await;
    assert!(stored.contains("refused"), "the refused source is recorded: {stored}");
    assert!(!stored.contains(&secret), "the database keeps the payment token: {stored}");
    let logged = logs();
    let logged = &logged[logs_before.min(logged.len())..];
    assert!(logged.contains(&number), "the capture sees the host's lines (order {number} placed)");
    assert!(!logged.contains(&secret), "the logs show the payment token");
}

/// A seed of the secret part of a token: the time and this process.
fn token_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default();
    nanos ^ (u64::from(std::process::id()) << 32)
}

async fn a_refused_payment_leaves_its_source_marked_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, body) = app.place(&checkout("59.00", "tok_decline"), None).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let (status, body) = app.place(&checkout("59.00", "tok_error"), None).await;
    assert!(status.is_server_error(), "{status} {body}");
    let (status, order) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");

    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    let states: Vec<(String, String)> =
        sqlx::query_as("SELECT state, reference FROM payment_sources ORDER BY id").fetch_all(&mut connection).await.expect("sources");
    let states: Vec<&str> = states.iter().map(|(state, _)| state.as_str()).collect();
    assert_eq!(states, ["refused", "refused", "paid"]);
    // An order's payment is never a refused one.
    let refused_with_order: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orders JOIN payment_sources ON payment_sources.id = orders.payment_source_id
         WHERE payment_sources.state <> 'paid'",
    )
    .fetch_one(&mut connection)
    .await
    .expect("count");
    assert_eq!(refused_with_order, 0);
    assert_eq!(app.order_count().await, 1);
}
