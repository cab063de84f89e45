//! The revocation trace (issue 10, part 3), over real HTTP on both
//! databases: what a refund did to each line (revoked, not revoked and the
//! module's reason, skipped and why) and a refused credit are notes on the
//! order for staff.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Db, TestApp, checkout};
use crate::on_both_databases;

on_both_databases!(
    a_refund_leaves_a_note_per_line_naming_refund_module_and_outcome,
    a_refund_for_payment_only_notes_the_skipped_lines,
    a_refused_credit_is_noted_on_the_order,
);

/// Places the usual order (seat and donation) and waits until it is Complete.
async fn complete_order(app: &TestApp, token: &str) -> String {
    let (status, order) = app.place(&checkout("59.00", token), None).await;
    assert!(matches!(status, StatusCode::CREATED | StatusCode::ACCEPTED), "{status}: {order}");
    let number = order["number"].as_str().expect("a number").to_string();
    let order = app.settled_order(&number).await;
    assert_eq!(order["status"], "Complete", "{order}");
    number
}

/// Creates a refund of `lines` of order `number` and processes it with
/// `action`; the refund once settled (fails after 20 s).
async fn refund(app: &TestApp, number: &str, lines: &[u64], action: &str) -> Value {
    let body = json!({"order_number": number, "line_ids": lines});
    let (status, created) = app.send(app.http.post(format!("{}/refunds", app.base)).json(&body), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("an id");
    let (status, processed) = app.put(&format!("/refunds/{id}/process"), Some(json!({ "action": action })), ADMIN_TOKEN).await;
    assert!(matches!(status, StatusCode::OK | StatusCode::ACCEPTED), "{status}: {processed}");
    app.settled_refund(id).await
}

/// The notes of order `number` that speak of refund `id`.
async fn refund_notes(app: &TestApp, number: &str, id: &Value) -> Vec<Value> {
    let (_, order) = app.get(&format!("/orders/{number}"), ADMIN_TOKEN).await;
    let prefix = format!("refund {id}: ");
    order["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter(|note| note["message"].as_str().is_some_and(|message| message.starts_with(&prefix)))
        .cloned()
        .collect()
}

async fn a_refund_leaves_a_note_per_line_naming_refund_module_and_outcome(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let number = complete_order(&app, "tok_success").await;
    // The LMS is away: the seat cannot be revoked, the donation can.
    let lms_address = app.lms_down().await;
    let refunded = refund(&app, &number, &[1, 2], "approve").await;
    assert_eq!(refunded["status"], "Revocation Error", "{refunded}");
    let notes = refund_notes(&app, &number, &refunded["id"]).await;
    assert_eq!(notes.len(), 2, "one note per line: {notes:?}");
    let seat = &notes[0];
    assert_eq!((seat["kind"].as_str(), seat["line_id"].as_u64(), seat["module"].as_str()), (Some("Error"), Some(1), Some("enrollment")));
    let message = seat["message"].as_str().unwrap_or_default();
    let reason = refunded["lines"][0]["reason"].as_str().expect("the module's reason");
    assert_eq!(message, format!("refund {}: line 1 not revoked by module `enrollment`: {reason}", refunded["id"]));
    let donation = &notes[1];
    assert_eq!((donation["kind"].as_str(), donation["line_id"].as_u64(), donation["module"].as_str()), (Some("Info"), Some(2), Some("donation")));
    assert_eq!(donation["message"], format!("refund {}: line 2 revoked by module `donation`", refunded["id"]));

    // Staff approve it again once the LMS is back: the seat's outcome is noted too.
    app.lms_up(lms_address).await;
    let id = refunded["id"].as_i64().expect("an id");
    let (status, again) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert!(matches!(status, StatusCode::OK | StatusCode::ACCEPTED), "{status}: {again}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let notes = loop {
        app.run_due_jobs().await;
        let notes = refund_notes(&app, &number, &refunded["id"]).await;
        if notes.len() > 2 {
            break notes;
        }
        assert!(std::time::Instant::now() < deadline, "the second approval left no note: {notes:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(notes.len(), 3, "{notes:?}");
    let (_, settled) = app.get(&format!("/refunds/{id}"), ADMIN_TOKEN).await;
    assert_eq!(settled["lines"][0]["status"], "Complete", "the LMS is back: the seat is revoked: {settled}");
    assert_eq!(notes[2]["message"], format!("refund {id}: line 1 revoked by module `enrollment`"), "{notes:?}");
}

async fn a_refund_for_payment_only_notes_the_skipped_lines(db: Db) {
    let app = TestApp::spawn(db).await;
    let number = complete_order(&app, "tok_success").await;
    let refunded = refund(&app, &number, &[1], "approve_payment_only").await;
    assert_eq!(refunded["status"], "Complete", "{refunded}");
    let notes = refund_notes(&app, &number, &refunded["id"]).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["kind"], "Info");
    assert_eq!(notes[0]["module"], "enrollment");
    assert_eq!(notes[0]["message"], format!("refund {}: line 1 skipped: approved for payment only", refunded["id"]));
}

async fn a_refused_credit_is_noted_on_the_order(db: Db) {
    let app = TestApp::spawn(db).await;
    let number = complete_order(&app, "tok_success_refund_error").await;
    let refunded = refund(&app, &number, &[1], "approve").await;
    assert_eq!(refunded["status"], "Payment Refund Error", "{refunded}");
    let notes = refund_notes(&app, &number, &refunded["id"]).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["kind"], "Error");
    let message = notes[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("the credit was refused") && message.ends_with("no line was revoked"), "{message}");
}
