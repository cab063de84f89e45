//! The edX refund contract over HTTP: `approve_payment_only` credits without
//! revoking, and a repeated `deny` answers 200 and changes nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, COURSE, Db, TestApp, checkout};
use crate::on_both_databases;

on_both_databases!(
    approve_payment_only_credits_and_revokes_nothing,
    denying_a_denied_refund_again_answers_200_and_changes_nothing,
);

/// An Open refund of the seat (line 1) of a Complete order.
async fn open_refund_of_the_seat(app: &TestApp) -> i64 {
    let (status, order) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert!(matches!(status, StatusCode::CREATED | StatusCode::ACCEPTED), "{status}: {order}");
    let order = app.settled_order("EDX-100001").await;
    assert_eq!(order["status"], "Complete", "{order}");
    let refund = json!({"order_number": "EDX-100001", "line_ids": [1]});
    let (status, created) = app
        .send(app.http.post(format!("{}/refunds", app.base)).json(&refund), Some(ADMIN_TOKEN))
        .await;
    assert_eq!((status, &created["status"]), (StatusCode::CREATED, &json!("Open")), "{created}");
    created["id"].as_i64().expect("an id")
}

/// Refund `id` once it left Open and its job settled; fails after 20 s.
async fn settled(app: &TestApp, id: i64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        app.run_due_jobs().await;
        let (_, refund) = app.get(&format!("/refunds/{id}"), ADMIN_TOKEN).await;
        if matches!(refund["status"].as_str(), Some("Complete" | "Revocation Error" | "Payment Refund Error" | "Denied")) {
            return refund;
        }
        assert!(std::time::Instant::now() < deadline, "refund {id} did not settle: {refund}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn approve_payment_only_credits_and_revokes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = open_refund_of_the_seat(&app).await;
    let sent_before = app.lms.requests().len();
    let (status, answer) = app
        .put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve_payment_only"})), ADMIN_TOKEN)
        .await;
    assert!(matches!(status, StatusCode::OK | StatusCode::ACCEPTED), "{status}: {answer}");
    let refund = settled(&app, id).await;
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
    let id = open_refund_of_the_seat(&app).await;
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
