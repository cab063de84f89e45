//! Asynchronous fulfillment in one process: the order is answered `Open`,
//! a worker fulfills it from the job queue, failed lines are retried with
//! the policy's backoff, configuration errors are not, and giving up leaves
//! the right statuses and notes. On SQLite and PostgreSQL.
//! (Crashes and many hosts, with real processes: tests/scaling.)

use std::time::Duration;

use fulfillment_tests::lms::{Behaviour, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::harness::{ADMIN_TOKEN, Db, TestApp, checkout};
use crate::on_both_databases;

/// Async mode with millisecond backoff: retry n waits 40 * 2^(n-1) ms.
fn async_mode(max_retries: u32) -> String {
    format!(
        "[fulfillment]\nmode = \"async\"\nworkers = 2\nmax_retries = {max_retries}\nbackoff_base_ms = 40\njitter_percent = 0\npoll_ms = 20\nlease_ms = 10000\n\
         [[products]]\nsku = \"BOOK\"\nproduct_type = \"Book\"\ntitle = \"Book\"\nprice = \"5.00\"\ncurrency = \"USD\"\n"
    )
}

/// Waits until order `number`'s job has left `queued`, then returns the
/// order. Bounded: a job that never finishes fails the test.
async fn when_job_settles(app: &TestApp, number: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let path = format!("/orders/{number}");
    loop {
        let (status, order) = app.get(&path, ADMIN_TOKEN).await;
        assert_eq!(status, StatusCode::OK);
        if order["fulfillment_job"]["state"] != "queued" {
            return order;
        }
        assert!(tokio::time::Instant::now() < deadline, "order {number}'s job did not settle: {order}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The attempt log of line `line_id` of order `number`: (outcome, unix ms).
async fn attempts(app: &TestApp, number: &str, line_id: i64) -> Vec<(String, i64)> {
    sqlx::any::install_default_drivers();
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    sqlx::query(
        "SELECT a.outcome, a.created_at FROM fulfillment_attempts a JOIN orders o ON o.id = a.order_id
         WHERE o.number = $1 AND a.line_id = $2 ORDER BY a.id",
    )
    .bind(number)
    .bind(line_id)
    .fetch_all(&mut connection)
    .await
    .expect("attempt log")
    .iter()
    .map(|row| (row.get::<String, _>("outcome"), row.get::<i64, _>("created_at")))
    .collect()
}

fn seat_and(sku: &str, total: &str) -> Value {
    let mut body = checkout(total, "tok_success");
    body["basket"] = json!([{"sku": "SEAT", "quantity": 1}, {"sku": sku, "quantity": 1}]);
    body
}

async fn an_async_order_is_answered_open_and_completed_by_a_worker(db: Db) {
    let app = TestApp::spawn_with(db, &async_mode(11)).await;
    let (status, placed) = app.place(&seat_and("DONATION", "59.00"), None).await;
    assert_eq!(status, StatusCode::CREATED);
    // Answered at once, as the order stands then: Open while the LMS call
    // is on its way (a worker may already be done).
    assert!(matches!(placed["status"].as_str(), Some("Open" | "Complete")), "{placed}");
    assert!(placed["fulfillment_job"].is_object(), "{placed}");
    let number = placed["number"].as_str().expect("a number");
    let order = when_job_settles(&app, number).await;
    assert_eq!(order["status"], "Complete", "{order}");
    assert_eq!(order["fulfillment_job"]["state"], "done");
    assert_eq!(order["fulfillment_job"]["attempts"], 1);
    assert_eq!(app.lms.fulfillments_for_key(&format!("{number}-1")), 1);
    let root = app.base.trim_end_matches("/api/v1");
    let ready: Value = app.http.get(format!("{root}/readyz")).send().await.expect("readyz").json().await.expect("json");
    // The checkout's job and the order's.
    assert_eq!(ready["fulfillment"]["jobs"], json!({"done": 2}), "{ready}");
}

async fn failed_lines_are_retried_with_the_policys_backoff(db: Db) {
    let app = TestApp::spawn_with(db, &async_mode(11)).await;
    app.lms.set_behaviour(Behaviour {
        fail_next: Some((3, Reply::new(503, "The LMS is restarting."))),
        ..Behaviour::default()
    });
    let (_, placed) = app.place(&seat_and("DONATION", "59.00"), None).await;
    let number = placed["number"].as_str().expect("a number");
    let order = when_job_settles(&app, number).await;
    assert_eq!(order["status"], "Complete");
    assert_eq!(order["fulfillment_job"]["attempts"], 4);

    let seat = attempts(&app, number, 1).await;
    let outcomes: Vec<&str> = seat.iter().map(|(outcome, _)| outcome.as_str()).collect();
    assert_eq!(outcomes, ["Fulfillment Server Error", "Fulfillment Server Error", "Fulfillment Server Error", "Complete"]);
    // Retry n waits at least 40 * 2^(n-1) ms after attempt n.
    for (retry, pair) in seat.windows(2).enumerate() {
        let waited = pair[1].1 - pair[0].1;
        let backoff = 40 << retry;
        assert!(waited >= backoff, "retry {} came {waited} ms after the attempt before it, under the {backoff} ms backoff", retry + 1);
    }
    // Only the failed line was sent again: the donation completed once.
    assert_eq!(attempts(&app, number, 2).await.len(), 1);
    assert_eq!(app.lms.fulfillments_for_key(&format!("{number}-1")), 1);
}

async fn configuration_errors_are_not_retried(db: Db) {
    let app = TestApp::spawn_with(db, &async_mode(11)).await;
    let (_, placed) = app.place(&seat_and("BOOK", "54.00"), None).await;
    let number = placed["number"].as_str().expect("a number");
    let order = when_job_settles(&app, number).await;
    assert_eq!(order["status"], "Fulfillment Error");
    assert_eq!(order["lines"][0]["status"], "Complete");
    assert_eq!(order["lines"][1]["status"], "Fulfillment Configuration Error");
    assert_eq!(order["fulfillment_job"]["state"], "failed");
    assert_eq!(order["fulfillment_job"]["attempts"], 1);
    assert_eq!(attempts(&app, number, 2).await.len(), 1, "the book line was tried once");
}

async fn giving_up_leaves_the_order_failed_with_a_note_and_staff_retry_still_works(db: Db) {
    let app = TestApp::spawn_with(db, &async_mode(2)).await;
    app.lms.fail_all(503, "The LMS is down for maintenance.");
    let (_, placed) = app.place(&seat_and("DONATION", "59.00"), None).await;
    let number = placed["number"].as_str().expect("a number");
    let order = when_job_settles(&app, number).await;
    assert_eq!(order["status"], "Fulfillment Error");
    assert_eq!(order["lines"][0]["status"], "Fulfillment Server Error");
    assert_eq!(order["lines"][1]["status"], "Complete");
    assert_eq!(order["fulfillment_job"]["state"], "gave-up");
    assert_eq!(order["fulfillment_job"]["attempts"], 3);
    let notes: Vec<&str> = order["notes"].as_array().expect("notes").iter().filter_map(|note| note["message"].as_str()).collect();
    assert_eq!(notes.last(), Some(&"Giving up after 3 attempts"), "{notes:?}");
    assert_eq!(attempts(&app, number, 1).await.len(), 3);

    app.lms.heal();
    let (status, retried) = app.put(&format!("/orders/{number}/fulfill"), None, ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["status"], "Complete");
    assert_eq!(retried["fulfillment_job"]["state"], "done");
}

on_both_databases!(
    a_staff_retry_that_still_fails_answers_502_and_keeps_the_backoff,
    an_async_order_is_answered_open_and_completed_by_a_worker,
    failed_lines_are_retried_with_the_policys_backoff,
    configuration_errors_are_not_retried,
    giving_up_leaves_the_order_failed_with_a_note_and_staff_retry_still_works,
);

async fn a_staff_retry_that_still_fails_answers_502_and_keeps_the_backoff(db: Db) {
    // Async mode whose next retry is a minute away.
    let settings = "[fulfillment]\nmode = \"async\"\nworkers = 1\nbackoff_base_ms = 60000\njitter_percent = 0\npoll_ms = 20\n";
    let app = TestApp::spawn_with(db, settings).await;
    app.lms.fail_all(503, "The LMS is restarting.");
    let (_, placed) = app.place(&seat_and("DONATION", "59.00"), None).await;
    let number = placed["number"].as_str().expect("a number").to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let waiting = loop {
        let (_, order) = app.get(&format!("/orders/{number}"), ADMIN_TOKEN).await;
        if order["fulfillment_job"]["attempts"] == 1 && order["fulfillment_job"]["running"] == false {
            break order;
        }
        assert!(tokio::time::Instant::now() < deadline, "the first attempt never ended: {order}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(waiting["fulfillment_job"]["state"], "queued", "{waiting}");

    let (status, retried) = app.put(&format!("/orders/{number}/fulfill"), None, ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "the staff retry ran and still failed: {retried}");
    assert_eq!(retried["status"], "Fulfillment Error");
    let job = &retried["fulfillment_job"];
    assert_eq!((&job["state"], &job["attempts"]), (&json!("queued"), &json!(1)), "not counted: {retried}");
    let next = time::OffsetDateTime::parse(job["next_attempt_at"].as_str().expect("due later"), &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    assert!(next > time::OffsetDateTime::now_utc() + Duration::from_secs(30), "the backoff is kept: {retried}");
}
