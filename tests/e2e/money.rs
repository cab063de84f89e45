//! Money is never lost (issue 9), over real HTTP on both databases: bad
//! input is refused before any charge; a fulfillment that outlasts the
//! request's wait goes on and completes; refund approvals that race or are
//! cancelled credit once; a starved database never leaves a payment
//! without an order.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, COURSE, Db, TestApp, checkout};
use crate::on_both_databases;

on_both_databases!(
    bad_input_is_refused_before_any_charge_naming_the_field,
    a_fulfillment_that_outlasts_the_wait_answers_202_and_completes,
    a_dropped_checkout_request_still_completes_its_order,
    concurrent_refund_approvals_credit_once,
    cancelled_refund_approvals_credit_once,
    large_baskets_never_leave_a_payment_without_an_order,
    a_refund_whose_credit_was_asked_for_cannot_be_denied,
    a_page_of_orders_reads_each_order_with_its_payment_and_job,
    a_credit_never_exceeds_what_is_left_of_the_payment,
    a_refused_credit_leaves_a_payment_refund_error_and_moves_nothing,
);

/// A host whose requests wait at most 300 ms for the work they start.
const SHORT_WAIT: &str = "[fulfillment]\nsync_wait_ms = 300\npoll_ms = 50\n";

/// How many rows `table` has.
async fn rows(app: &TestApp, table: &str) -> i64 {
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut connection)
        .await
        .expect("count rows")
}

async fn bad_input_is_refused_before_any_charge_naming_the_field(db: Db) {
    let app = TestApp::spawn_with(db, "[server]\nbind = \"127.0.0.1:0\"\nbody_limit_bytes = 1048576\n").await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = checkout("59.00", "tok_success");
        change(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        // A negative shipping charge that makes the total 0 or negative.
        (with(&|body| { body["shipping_charge"] = json!("-59.00"); body["total"] = json!("0.00"); }), "shipping_charge"),
        (with(&|body| { body["shipping_charge"] = json!("-120.00"); body["total"] = json!("-61.00"); }), "shipping_charge"),
        (with(&|body| body["total"] = json!("-59.00")), "total"),
        // NUL bytes (PostgreSQL cannot store them) and other control characters.
        (with(&|body| body["user"]["username"] = json!("ali\u{0}ce")), "user.username"),
        (with(&|body| body["user"]["email"] = json!("alice\u{0}@example.com")), "user.email"),
        (with(&|body| body["shipping_method"] = json!("post\u{0}")), "shipping_method"),
        (with(&|body| body["payment"]["token"] = json!("tok_success\u{0}")), "payment.token"),
        (with(&|body| body["billing_address"] = json!({"line1": "1 Main St\u{1b}"})), "billing_address.line1"),
        // Oversized fields and counts.
        (with(&|body| body["user"]["username"] = json!("u".repeat(151))), "user.username"),
        (with(&|body| body["user"]["email"] = json!(format!("{}@example.com", "e".repeat(250)))), "user.email"),
        (with(&|body| body["payment"]["token"] = json!(format!("tok_success{}", "x".repeat(250)))), "payment.token"),
        (with(&|body| body["billing_address"] = json!({"line1": "x".repeat(5_000)})), "billing_address.line1"),
        (with(&|body| body["shipping_address"] = json!({"postcode": "x".repeat(65)})), "shipping_address.postcode"),
        (with(&|body| body["basket"][0]["quantity"] = json!(1_001)), "basket[0].quantity"),
        (with(&|body| body["basket"] = json!(vec![json!({"sku": "DONATION", "quantity": 1}); 7_000])), "basket"),
        // A processor that cannot take the payment.
        (with(&|body| body["payment"]["processor"] = json!("cash")), "payment.processor"),
        (with(&|body| body["payment"]["processor"] = json!("free")), "payment.processor"),
    ];
    for (body, field) in &cases {
        let (status, answer) = app.place(body, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {answer}");
        assert_eq!(answer["error"]["field"], *field, "{answer}");
    }
    for key in ["k".repeat(256), "two words".to_string()] {
        let (status, answer) = app.place(&checkout("59.00", "tok_success"), Some(&key)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], "Idempotency-Key", "{answer}");
    }
    assert_eq!(app.charges(), 0, "nothing was charged");
    assert_eq!(rows(&app, "payment_sources").await, 0, "nothing was even recorded");
    assert_eq!(rows(&app, "orders").await, 0);

    // The OpenAPI document states the same bounds.
    let (_, document) = app.get("/openapi.json", ADMIN_TOKEN).await;
    let schema = &document["components"]["schemas"];
    assert_eq!(schema["PlaceOrder"]["properties"]["basket"]["maxItems"], 100, "{}", schema["PlaceOrder"]);
    assert_eq!(schema["BasketLine"]["properties"]["quantity"]["maximum"], 1000, "{}", schema["BasketLine"]);
    assert_eq!(schema["PaymentInput"]["properties"]["token"]["maxLength"], 255, "{}", schema["PaymentInput"]);
    assert!(schema["PlaceOrder"]["properties"]["shipping_charge"]["pattern"].is_string(), "{}", schema["PlaceOrder"]);
    let key = document["paths"]["/api/v1/orders"]["post"]["parameters"]
        .as_array()
        .and_then(|parameters| parameters.iter().find(|parameter| parameter["name"] == "Idempotency-Key"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(key["schema"]["maxLength"], 255, "{key}");
}

async fn a_fulfillment_that_outlasts_the_wait_answers_202_and_completes(db: Db) {
    let app = TestApp::spawn_with(db, SHORT_WAIT).await;
    app.lms.delay(Duration::from_millis(1_500));
    let response = app
        .http
        .post(format!("{}/orders", app.base))
        .bearer_auth(crate::harness::CHECKOUT_TOKEN)
        .json(&checkout("59.00", "tok_success"))
        .send()
        .await
        .expect("the host answers");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers().get("location").and_then(|value| value.to_str().ok()).map(str::to_string);
    assert_eq!(location.as_deref(), Some("/api/v1/orders/EDX-100001"));
    let placed: Value = response.json().await.expect("an order");
    assert_eq!(placed["status"], "Open", "{placed}");
    assert_eq!(placed["fulfillment_job"]["running"], true, "{placed}");

    let order = app.settled_order("EDX-100001").await;
    assert_eq!(order["status"], "Complete", "the fulfillment went on after the answer: {order}");
    assert_eq!(order["fulfillment_job"]["state"], "done");
    assert_eq!(app.lms.fulfillments_for_key("EDX-100001-1"), 1);
    assert_eq!(app.charges(), 1);
}

async fn a_dropped_checkout_request_still_completes_its_order(db: Db) {
    // Dropped before its order was stored, the checkout is completed from
    // its record after 300 ms; after, its fulfillment goes on.
    let app = TestApp::spawn_with(db, &format!("{SHORT_WAIT}[orders]\ncheckout_grace_ms = 300\n")).await;
    app.lms.delay(Duration::from_millis(800));
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().expect("client");
    let sent = impatient
        .post(format!("{}/orders", app.base))
        .bearer_auth(crate::harness::CHECKOUT_TOKEN)
        .header("Idempotency-Key", "impatient-1")
        .json(&checkout("59.00", "tok_success"))
        .send()
        .await;
    assert!(sent.is_err(), "the client gave up before the answer");
    // The replay of the key finds the order once it exists (waiting for the
    // checkout in progress), and the order completes.
    let (status, order) = app.place(&checkout("59.00", "tok_success"), Some("impatient-1")).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let number = order["number"].as_str().expect("a number").to_string();
    let order = app.settled_order(&number).await;
    assert_eq!(order["status"], "Complete", "{order}");
    assert_eq!(app.charges(), 1);
    assert_eq!(app.lms.fulfillments_for_key(&format!("{number}-1")), 1);
    assert_eq!(app.charges_without_order().await, Vec::<String>::new());
}

/// Checks that the seat's refund credited 49.00 exactly once.
async fn credited_once(app: &TestApp, id: i64) {
    let refund = app.settled_refund(id).await;
    assert_eq!(refund["status"], "Complete", "{refund}");
    assert_eq!(refund["credit"], "done", "{refund}");
    let credits = app.payments.ledger().iter().filter(|entry| entry.signed_minor_units < 0).count();
    assert_eq!(credits, 1, "the processor credited once");
    assert_eq!(rows(app, "payment_events WHERE event_type = 'Refunded'").await, 1);
    let (_, order) = app.get("/orders/EDX-100001", ADMIN_TOKEN).await;
    assert_eq!(order["payment"]["refunded"], "49.00", "{order}");
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|e| e.is_active), Some(false), "the LMS saw the revocation");
    // Approving it again changes nothing.
    let (status, again) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert_eq!((status, &again["status"]), (StatusCode::OK, &json!("Complete")), "{again}");
    assert_eq!(rows(app, "payment_events WHERE event_type = 'Refunded'").await, 1);
}

async fn concurrent_refund_approvals_credit_once(db: Db) {
    let app = TestApp::spawn_with(db, SHORT_WAIT).await;
    let id = app.refund_of_the_seat().await;
    app.lms.delay(Duration::from_millis(600));
    let path = format!("/refunds/{id}/process");
    let approve = || app.put(&path, Some(json!({"action": "approve"})), ADMIN_TOKEN);
    let ((first, a), (second, b)) = tokio::join!(approve(), approve());
    for (status, body) in [(first, &a), (second, &b)] {
        assert!(matches!(status, StatusCode::OK | StatusCode::ACCEPTED), "{status}: {body}");
    }
    app.lms.heal();
    credited_once(&app, id).await;
}

async fn cancelled_refund_approvals_credit_once(db: Db) {
    let app = TestApp::spawn_with(db, SHORT_WAIT).await;
    let id = app.refund_of_the_seat().await;
    app.lms.delay(Duration::from_millis(600));
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(50)).build().expect("client");
    for attempt in 0..2 {
        let sent = impatient
            .put(format!("{}/refunds/{id}/process", app.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"action": "approve"}))
            .send()
            .await;
        match sent {
            Err(_) => {}
            // The second finds the first's job running and says so at once.
            Ok(response) => assert!(attempt == 1 && response.status() == StatusCode::ACCEPTED, "{response:?}"),
        }
    }
    // Whatever the cancelled requests got to do (nothing, or the credit
    // recorded as intended and its job started), approving now finishes it.
    let (status, body) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert!(matches!(status, StatusCode::OK | StatusCode::ACCEPTED), "{status}: {body}");
    app.lms.heal();
    credited_once(&app, id).await;
}

async fn large_baskets_never_leave_a_payment_without_an_order(db: Db) {
    let settings = "[server]\nbind = \"127.0.0.1:0\"\nbody_limit_bytes = 1048576\n[orders]\ncheckout_grace_ms = 200\n";
    let app = TestApp::spawn_with_pool(db, settings, 2).await;
    let large = {
        let mut body = checkout("1000.00", "tok_success");
        body["basket"] = json!(vec![json!({"sku": "DONATION", "quantity": 1}); 100]);
        body
    };
    let mut placing = Vec::new();
    for index in 0..60 {
        let body = if index % 6 == 0 { large.clone() } else { checkout("59.00", "tok_success") };
        let (http, base) = (app.http.clone(), app.base.clone());
        placing.push(tokio::spawn(async move {
            let response = http
                .post(format!("{base}/orders"))
                .bearer_auth(crate::harness::CHECKOUT_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("the host answers");
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let (mut placed, mut refused) = (0, 0);
    for task in placing {
        let (status, body) = task.await.expect("placing task");
        match status {
            StatusCode::CREATED | StatusCode::ACCEPTED => placed += 1,
            // Refused before any money moved, or paid and completed later.
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(matches!(body["error"]["code"].as_str(), Some("busy" | "order_pending")), "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    eprintln!("60 checkouts on a pool of 2: {placed} placed, {refused} answered 503");
    assert!(placed > 0, "some orders went through");
    assert_eq!(app.charges_without_order().await, Vec::<String>::new(), "every charge has its order");
    let orders = rows(&app, "orders").await;
    assert_eq!(app.charges() as i64, orders, "one charge per order");
}

async fn a_refund_whose_credit_was_asked_for_cannot_be_denied(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = app.refund_of_the_seat().await;
    // As a run that asked the processor and then lost its database leaves it.
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    sqlx::query("UPDATE refunds SET credit_state = 'intended', credit_minor = total_minor WHERE id = $1")
        .bind(id)
        .execute(&mut connection)
        .await
        .expect("mark the credit intended");
    let (status, body) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "deny"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Approving finishes it, crediting once.
    let (status, body) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    credited_once(&app, id).await;
}

async fn a_page_of_orders_reads_each_order_with_its_payment_and_job(db: Db) {
    let app = TestApp::spawn(db).await;
    for _ in 0..3 {
        let (status, order) = app.place(&checkout("59.00", "tok_success"), None).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
    }
    let (status, page) = app.get("/orders?page_size=2", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["count"], 3);
    let numbers: Vec<&str> = page["results"].as_array().expect("results").iter().filter_map(|order| order["number"].as_str()).collect();
    assert_eq!(numbers, ["EDX-100003", "EDX-100002"]);
    for order in page["results"].as_array().expect("results") {
        assert_eq!(order["payment"]["amount"], "59.00", "{order}");
        assert_eq!(order["fulfillment_job"]["state"], "done", "{order}");
        assert_eq!(order["lines"].as_array().map(Vec::len), Some(2), "{order}");
    }
}

async fn a_credit_never_exceeds_what_is_left_of_the_payment(db: Db) {
    let app = TestApp::spawn(db).await;
    let id = app.refund_of_the_seat().await;
    // As if 20.00 of the 59.00 payment had been refunded outside this refund.
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    sqlx::query(
        "INSERT INTO payment_events (payment_source_id, event_type, amount_minor, reference, created_at)
         SELECT payment_source_id, 'Refunded', 2000, 'elsewhere', 0 FROM orders WHERE number = 'EDX-100001'",
    )
    .execute(&mut connection)
    .await
    .expect("record an earlier credit");
    let (status, body) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(message, format!("refund {id} would credit 49.00, but only 39.00 of the payment of 59.00 is left to refund"));
    let credits = app.payments.ledger().iter().filter(|entry| entry.signed_minor_units < 0).count();
    assert_eq!(credits, 0, "nothing was credited");
    let (_, refund) = app.get(&format!("/refunds/{id}"), ADMIN_TOKEN).await;
    assert_eq!((&refund["status"], &refund["credit"]), (&json!("Open"), &json!("none")), "{refund}");
}

async fn a_refused_credit_leaves_a_payment_refund_error_and_moves_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    // The test processor refuses the credits of this charge.
    let (status, order) = app.place(&checkout("59.00", "tok_success_refund_error"), None).await;
    assert_eq!((status, &order["status"]), (StatusCode::CREATED, &json!("Complete")), "{order}");
    let refund = json!({"order_number": "EDX-100001", "line_ids": [1]});
    let (_, created) = app.send(app.http.post(format!("{}/refunds", app.base)).json(&refund), Some(ADMIN_TOKEN)).await;
    let id = created["id"].as_i64().expect("an id");
    let (status, refused) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!((&refused["status"], &refused["credit"]), (&json!("Payment Refund Error"), &json!("failed")), "{refused}");
    assert_eq!(refused["lines"][0]["status"], "Open", "nothing was revoked: {refused}");
    assert_eq!(rows(&app, "payment_events WHERE event_type = 'Refunded'").await, 0);
    assert_eq!(app.lms.enrollment("alice", COURSE).map(|e| e.is_active), Some(true), "still enrolled");
    // It cannot be denied any more (the pipeline), and approving again asks again.
    let (status, _) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "deny"})), ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, again) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert_eq!((status, &again["status"]), (StatusCode::OK, &json!("Payment Refund Error")), "{again}");
}

/// A sync wait that ends right at the request time-out: the answer comes
/// before the time-out, as a 202 with the order and its Location, never the
/// bare 503 of the time-out after the money moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_as_long_as_the_request_time_out_still_answers_202_with_the_order() {
    let extra = "[server]\nbind = \"127.0.0.1:0\"\nrequest_timeout_ms = 5000\n\
                 [fulfillment]\nsync_wait_ms = 4999\n";
    let app = TestApp::spawn_with(Db::Sqlite, extra).await;
    app.lms.delay(Duration::from_secs(10));
    let (status, order) = app.place(&checkout("59.00", "tok_success"), Some("slow-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{order}");
    assert_eq!(order["number"], "EDX-100001", "{order}");
    assert_eq!(app.charges(), 1);
}
