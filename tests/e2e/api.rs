//! The HTTP API end to end: a real server on a loopback port, a real SQLite
//! file or PostgreSQL schema, the shipped modules, the LMS stand-in.
//! Every scenario runs on both databases; the PostgreSQL runs need
//! `FULFILLMENT_TEST_POSTGRES_URL` (scripts/test sets it) and say so when
//! they are skipped.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{
    ADMIN_TOKEN, CHECKOUT_TOKEN, COURSE, Db, TestApp, checkout, edx_billing_address, full_shipping_address, shipped, statuses,
};
use crate::on_both_databases;

on_both_databases!(
    placing_an_order_pays_then_fulfills_it,
    a_failed_line_is_retried_by_staff_without_resending_complete_lines,
    a_retry_that_still_fails_answers_an_error_with_the_order,
    a_declined_payment_creates_no_order,
    a_wrong_total_is_refused_before_any_charge,
    the_same_idempotency_key_charges_once,
    concurrent_duplicates_charge_once,
    an_approved_refund_credits_and_revokes,
    a_paid_checkout_whose_order_cannot_be_stored_becomes_an_order_later,
    tokens_and_roles_are_enforced,
);

async fn placing_an_order_pays_then_fulfills_it(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, order) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["number"], "EDX-100001");
    assert_eq!(order["status"], "Complete");
    assert_eq!(statuses(&order), ["Complete", "Complete"]);
    assert_eq!(order["lines"][0]["fulfilled_by"], "enrollment");
    assert_eq!(order["total"], "59.00");
    assert_eq!(order["payment"]["amount"], "59.00");
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|e| e.is_active), Some(true));

    let (status, again) = app.get("/orders/EDX-100001", CHECKOUT_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, order, "what was answered is what was stored");
    let (_, second) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert_eq!(second["number"], "EDX-100002");
}

async fn a_failed_line_is_retried_by_staff_without_resending_complete_lines(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let lms_address = app.lms_down().await;
    let (status, order) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(order["status"], "Fulfillment Error");
    assert_eq!(statuses(&order), ["Fulfillment Network Error", "Complete"]);
    assert_eq!(order["notes"][0]["message"], "Fulfillment of order failed due to a network problem.");
    assert_eq!(order["notes"][0]["line_id"], 1);
    let (_, stored) = app.get("/orders/EDX-100001", CHECKOUT_TOKEN).await;
    assert_eq!(stored, order, "what was answered (the order as its attempt stored it) is what was stored");

    app.lms_up(lms_address).await;
    let (status, retried) = app.put("/orders/EDX-100001/fulfill", None, ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["status"], "Complete");
    assert_eq!(statuses(&retried), ["Complete", "Complete"]);
    let requests = app.lms.requests();
    assert_eq!(requests.len(), 1, "only the failed seat was sent again: {requests:?}");
    assert_eq!(requests[0].idempotency_key.as_deref(), Some("EDX-100001-1"));

    let (status, body) = app.put("/orders/EDX-100001/fulfill", None, ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
    assert_eq!(body["error"]["code"], "not_fulfillable");
}

async fn a_retry_that_still_fails_answers_an_error_with_the_order(db: Db) {
    let app = TestApp::spawn(db).await;
    app.lms.fail_all(503, "LMS down for maintenance");
    let (_, order) = app.place(&checkout("59.00", "tok_success"), None).await;
    assert_eq!(statuses(&order), ["Fulfillment Server Error", "Complete"]);
    assert!(order["notes"][0]["message"].as_str().unwrap_or("").ends_with("LMS down for maintenance"), "{order}");
    let (status, retried) = app.put("/orders/EDX-100001/fulfill", None, ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(retried["status"], "Fulfillment Error");
    assert_eq!(retried["notes"].as_array().map(Vec::len), Some(2), "a note per failed attempt");
}

async fn a_declined_payment_creates_no_order(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, body) = app.place(&checkout("59.00", "tok_decline"), Some("declined-1")).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["error"]["message"], "payment declined: card declined");
    assert_eq!(app.order_count().await, 0);
    assert_eq!(app.charges(), 0);
    assert!(app.lms.requests().is_empty());
    // The key is free again: the learner may pay with another card.
    let (status, _) = app.place(&checkout("59.00", "tok_success"), Some("declined-1")).await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn a_wrong_total_is_refused_before_any_charge(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, body) = app.place(&checkout("58.99", "tok_success"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "total");
    assert_eq!(body["error"]["message"], "is 58.99 but the basket and shipping add up to 59.00");
    let mut unknown = checkout("59.00", "tok_success");
    unknown["basket"][1]["sku"] = json!("NOPE");
    let (status, body) = app.place(&unknown, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "basket[1].sku");
    let mut extra = checkout("59.00", "tok_success");
    extra["coupon_code"] = json!("FREE");
    let (status, body) = app.place(&extra, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("unknown field `coupon_code`"), "{body}");
    let huge = "x".repeat(4 * 1024);
    let (status, _) = app
        .send(
            app.http.post(format!("{}/orders", app.base)).header("Content-Type", "application/json").body(huge),
            Some(CHECKOUT_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.charges(), 0);
    assert_eq!(app.order_count().await, 0);
}

async fn the_same_idempotency_key_charges_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let (first_status, first) = app.place(&checkout("59.00", "tok_success"), Some("checkout-42")).await;
    let (second_status, second) = app.place(&checkout("59.00", "tok_success"), Some("checkout-42")).await;
    assert_eq!((first_status, second_status), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first["number"], second["number"]);
    assert_eq!(app.charges(), 1);
    assert_eq!(app.order_count().await, 1);

    let mut other = checkout("108.00", "tok_success");
    other["basket"][0]["quantity"] = json!(2);
    let (status, body) = app.place(&other, Some("checkout-42")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(app.charges(), 1);
}

async fn concurrent_duplicates_charge_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let body = checkout("59.00", "tok_success");
    let (a, b) = tokio::join!(app.place(&body, Some("double-click")), app.place(&body, Some("double-click")));
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [StatusCode::OK, StatusCode::CREATED]);
    assert_eq!(a.1["number"], b.1["number"]);
    assert_eq!(app.charges(), 1);
    assert_eq!(app.order_count().await, 1);
}

async fn an_approved_refund_credits_and_revokes(db: Db) {
    let app = TestApp::spawn(db).await;
    app.place(&checkout("59.00", "tok_success"), None).await;
    let refund = json!({"order_number": "EDX-100001", "line_ids": [1]});
    let (status, created) = app
        .send(app.http.post(format!("{}/refunds", app.base)).json(&refund), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!((created["status"].as_str(), created["total"].as_str()), (Some("Open"), Some("49.00")));
    let id = created["id"].as_i64().expect("an id");

    let (status, processed) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{processed}");
    assert_eq!(processed["status"], "Complete");
    assert_eq!(processed["lines"][0]["status"], "Complete");
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|e| e.is_active), Some(false), "the LMS saw the revocation");
    let (_, order) = app.get("/orders/EDX-100001", ADMIN_TOKEN).await;
    assert_eq!(order["payment"]["refunded"], "49.00");

    let (status, _) = app
        .send(app.http.post(format!("{}/refunds", app.base)).json(&refund), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a line is refunded once");
}

async fn a_paid_checkout_whose_order_cannot_be_stored_becomes_an_order_later(db: Db) {
    let app = TestApp::spawn(db).await;
    // An order row already holds the next number: creating the order fails
    // after the charge (as a database that fails at that moment would).
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    sqlx::query(
        "INSERT INTO orders (number, username, email, date_placed, currency, total_minor, shipping_method,
             shipping_minor, billing_address, email_opt_in, basket_attributes, status, created_at)
         VALUES ('EDX-100001', 'x', 'x', '2026-01-01T00:00:00Z', 'USD', 0, 'x', 0, '{}', 0, '{}', 'Open', 0)",
    )
    .execute(&mut connection)
    .await
    .expect("insert the conflicting order");

    // With both addresses and a shipping charge: the order made from the
    // record has them as the direct one would.
    let request = shipped(checkout("59.00", "tok_success"));
    let (status, body) = app.place(&request, Some("lost-order")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "order_pending");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let reference = app.payments.ledger()[0].reference.clone();
    assert!(message.starts_with(&format!("payment {reference} was taken, but the order could not be stored yet")), "{message}");
    assert_eq!(app.charges(), 1);

    // The database is well again: the checkout's job makes the order from
    // the record, without charging again; a replay of the key returns it.
    sqlx::query("UPDATE orders SET number = 'OLD-1' WHERE number = 'EDX-100001'")
        .execute(&mut connection)
        .await
        .expect("free the number");
    app.run_due_jobs().await;
    let (status, order) = app.place(&request, Some("lost-order")).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["number"], "EDX-100001");
    assert_eq!(order["payment"]["reference"], json!(reference));
    assert_eq!(order["billing_address"], edx_billing_address(), "{order}");
    assert_eq!(order["shipping_address"], full_shipping_address(), "{order}");
    assert_eq!((&order["shipping_method"], &order["shipping_charge"], &order["total"]), (&json!("ups-ground"), &json!("5.00"), &json!("64.00")));
    let order = app.settled_order("EDX-100001").await;
    assert_eq!(order["status"], "Complete", "{order}");
    assert_eq!(app.charges(), 1);
    assert_eq!(app.charges_without_order().await, Vec::<String>::new());
}

async fn tokens_and_roles_are_enforced(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, body) = app.send(app.http.get(format!("{}/orders", app.base)), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = app.get("/orders", "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.put("/orders/EDX-1/fulfill", None, CHECKOUT_TOKEN).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["message"], "this needs a token with the `admin` role");
    let (status, _) = app.get("/modules", CHECKOUT_TOKEN).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, modules) = app.get("/modules", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(modules[0]["name"], "enrollment");
    assert_eq!(modules[0]["status"], "running");
    assert_eq!(modules[0]["limits"]["cpu_ms"], 1000);
    assert_eq!(modules[0]["circuit_breaker"]["state"], "closed");
    let broken = &modules[5];
    assert_eq!((&broken["name"], &broken["status"], &broken["enabled"]), (&json!("broken"), &json!("failed"), &json!(false)));
    assert!(
        broken["error"].as_str().is_some_and(|error| error.starts_with("module `broken`: /nonexistent/broken.wasm does not exist")),
        "{broken}"
    );
    let (status, document) = app.get("/openapi.json", CHECKOUT_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["paths"]["/api/v1/orders"]["post"].is_object(), "{document}");
}
