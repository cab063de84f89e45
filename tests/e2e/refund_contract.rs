//! The edX refund contract over HTTP: `approve_payment_only` credits without
//! revoking, and a repeated `deny` answers 200 and changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{ADMIN_TOKEN, COURSE, Db, TestApp};
use crate::on_both_databases;

on_both_databases!(
    approve_payment_only_credits_and_revokes_nothing,
    denying_a_denied_refund_again_answers_200_and_changes_nothing,
    an_approval_waiting_as_long_as_the_request_time_out_answers_202,
);

async fn approve_payment_only_credits_and_revokes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = app.refund_of_the_seat().await;
    let sent_before = app.lms.requests().len();
    let (status, answer) = app
        .put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve_payment_only"})), ADMIN_TOKEN)
        .await;
    assert!(matches!(status, StatusCode::OK | StatusCode::ACCEPTED), "{status}: {answer}");
    let refund = app.settled_refund(id).await;
    assert_eq!((&refund["status"], &refund["credit"]), (&json!("Complete"), &json!("done")), "{refund}");
    let credits: Vec<i64> = app
        .payments
        .ledger()
        .iter()
        .filter(|entry| entry.signed_minor_units < 0)
        .map(|entry| entry.signed_minor_units)
        .collect();
    assert_eq!(credits, [-4900], "the seat's price credited once");
    let (_, order) = app.get("/orders/EDX-100001", ADMIN_TOKEN).await;
    assert_eq!(order["payment"]["refunded"], "49.00", "{order}");
    assert_eq!(app.lms.requests().len(), sent_before, "nothing was sent to the LMS");
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|e| e.is_active), Some(true), "the learner keeps the seat");
}

async fn denying_a_denied_refund_again_answers_200_and_changes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = app.refund_of_the_seat().await;
    let path = format!("/refunds/{id}/process");
    let (status, denied) = app.put(&path, Some(json!({"action": "deny"})), ADMIN_TOKEN).await;
    assert_eq!((status, &denied["status"]), (StatusCode::OK, &json!("Denied")), "{denied}");
    let (status, again) = app.put(&path, Some(json!({"action": "deny"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, denied, "the same refund, unchanged");
    // A Denied refund cannot be approved any more (the reference's pipeline).
    let (status, body) = app.put(&path, Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(app.payments.ledger().iter().all(|entry| entry.signed_minor_units > 0), "nothing credited");
}

/// A checkout token is refused (403) by the admin endpoints before its
/// request is read: a malformed body or a bad path parameter does not get
/// it a 400 or a 422 that would tell it about the endpoint's input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_refuse_a_checkout_token_before_reading_its_request() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let token = crate::harness::CHECKOUT_TOKEN;
    let malformed = app
        .http
        .post(format!("{}/refunds", app.base))
        .header("Content-Type", "application/json")
        .body("{not json");
    let (status, body) = app.send(malformed, Some(token)).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{body}");
    let (status, body) = app.get("/refunds/not-a-number", token).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{body}");
    let (status, body) = app.put("/refunds/1/process", Some(json!({"action": "steal"})), token).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{body}");
}

/// An approval whose wait (`sync_wait_ms`) ends at the request time-out,
/// with a slow LMS revoking the seat: the answer comes before the time-out,
/// 202 with the refund, and the refund goes on to completion; not the bare
/// 503 of the time-out after the credit moved.
async fn an_approval_waiting_as_long_as_the_request_time_out_answers_202(db: Db) {
    let extra = "[server]\nbind = \"127.0.0.1:0\"\nrequest_timeout_ms = 5000\n[fulfillment]\nsync_wait_ms = 4999\n";
    let app = TestApp::spawn_with(db, extra).await;
    let id = app.refund_of_the_seat().await;
    app.lms.delay(std::time::Duration::from_secs(8));
    let (status, answer) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["id"], id, "{answer}");
    app.lms.heal();
    let refund = app.settled_refund(id).await;
    assert_eq!(refund["credit"], "done", "{refund}");
}
