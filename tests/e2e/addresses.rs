//! Shipping and addresses through the API (issue 12): `POST /orders` takes
//! both addresses as records, bounded field by field (a 422 names the
//! field, nothing is charged); the order, its list and the order made from
//! a checkout record show them as given; rows stored while the billing
//! address was free JSON still read.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Db, TestApp, checkout, edx_billing_address, full_shipping_address, shipped};
use crate::on_both_databases;

on_both_databases!(
    both_addresses_and_the_shipping_round_trip_through_get_and_the_list,
    each_bad_address_field_is_refused_by_name_before_any_charge,
    orders_stored_with_a_free_form_billing_address_still_read,
    a_key_sent_before_the_upgrade_replays_whatever_its_billing_address_held,
);

async fn both_addresses_and_the_shipping_round_trip_through_get_and_the_list(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, placed) = app.place(&shipped(checkout("59.00", "tok_success")), None).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let (status, order) = app.get("/orders/EDX-100001", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    for answer in [&placed, &order] {
        assert_eq!(answer["billing_address"], edx_billing_address(), "{answer}");
        assert_eq!(answer["shipping_address"], full_shipping_address(), "{answer}");
        assert_eq!((&answer["shipping_method"], &answer["shipping_charge"], &answer["total"]), (&json!("ups-ground"), &json!("5.00"), &json!("64.00")));
    }
    let (_, list) = app.get("/orders", ADMIN_TOKEN).await;
    assert_eq!(list["results"][0], order, "a listed order is the order");

    // No address, null, and `{}` are all no address.
    let mut bare = checkout("59.00", "tok_success");
    bare.as_object_mut().expect("an object").remove("billing_address");
    let mut nulls = checkout("59.00", "tok_success");
    (nulls["billing_address"], nulls["shipping_address"]) = (Value::Null, Value::Null);
    let mut empty = checkout("59.00", "tok_success");
    (empty["billing_address"], empty["shipping_address"]) = (json!({}), json!({}));
    for body in [bare, nulls, empty] {
        let (status, placed) = app.place(&body, None).await;
        assert_eq!(status, StatusCode::CREATED, "{placed}");
        let (_, order) = app.get(&format!("/orders/{}", placed["number"].as_str().expect("a number")), ADMIN_TOKEN).await;
        assert_eq!((&order["billing_address"], &order["shipping_address"]), (&Value::Null, &Value::Null), "{body}: {order}");
        assert_eq!(order["shipping_method"], "no-shipping-required");
    }
}

async fn each_bad_address_field_is_refused_by_name_before_any_charge(db: Db) {
    let app = TestApp::spawn(db).await;
    let with = |address: &str, change: &dyn Fn(&mut Value)| {
        let mut body = shipped(checkout("59.00", "tok_success"));
        change(&mut body[address]);
        body
    };
    let mut cases: Vec<(Value, String)> = Vec::new();
    for address in ["billing_address", "shipping_address"] {
        let field = |name: &str| format!("{address}.{name}");
        for (name, max) in [
            ("first_name", 255),
            ("last_name", 255),
            ("line1", 255),
            ("line2", 255),
            ("city", 255),
            ("state", 255),
            ("postcode", 64),
            ("phone_number", 128),
        ] {
            cases.push((with(address, &|value| value[name] = json!("x".repeat(max + 1))), field(name)));
            cases.push((with(address, &|value| value[name] = json!("a\u{0}b")), field(name)));
            cases.push((with(address, &|value| value[name] = json!("a\u{1b}[31mb")), field(name)));
        }
        for country in ["us", "USA", "U", "1A", "Ü"] {
            cases.push((with(address, &|value| value["country"] = json!(country)), field("country")));
        }
        // A field the record does not have, and a value of the wrong kind.
        cases.push((with(address, &|value| value["company"] = json!("edX")), field("company")));
        cases.push((with(address, &|value| value["city"] = json!(7)), field("city")));
        cases.push((with(address, &|value| *value = json!("1 Main St")), address.to_string()));
    }
    // Outside the addresses too, an unknown field is named by its path.
    let mut top = checkout("59.00", "tok_success");
    top["colour"] = json!("red");
    cases.push((top, "colour".to_string()));
    let mut line = checkout("59.00", "tok_success");
    line["basket"][1]["gift"] = json!(true);
    cases.push((line, "basket[1].gift".to_string()));
    for (body, field) in &cases {
        let (status, answer) = app.place(body, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {answer}");
        assert_eq!(answer["error"]["field"], json!(field), "{answer}");
    }
    assert_eq!(app.charges(), 0, "nothing was charged");
    assert_eq!(app.order_count().await, 0);

    // At the bounds, every field is taken.
    let mut longest = shipped(checkout("59.00", "tok_success"));
    for (name, max) in [("first_name", 255), ("line1", 255), ("postcode", 64), ("phone_number", 128)] {
        longest["shipping_address"][name] = json!("é".repeat(max));
    }
    let (status, placed) = app.place(&longest, None).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["shipping_address"], longest["shipping_address"]);
}

async fn orders_stored_with_a_free_form_billing_address_still_read(db: Db) {
    let app = TestApp::spawn(db).await;
    // Rows as the host stored them before migration 6: the billing address
    // as the storefront sent it (keys the record does not have, values that
    // are not strings), `{}` for none, no shipping address.
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    for (number, billing) in [
        ("OLD-1", r#"{"first_name": "Ann", "country": "US", "company": "edX", "line1": 12, "lines": ["a"]}"#),
        ("OLD-2", "{}"),
        ("OLD-3", "null"),
    ] {
        sqlx::query(
            "INSERT INTO orders (number, username, email, date_placed, currency, total_minor, shipping_method,
                 shipping_minor, billing_address, email_opt_in, basket_attributes, status, created_at)
             VALUES ($1, 'ann', 'ann@example.com', '2026-01-01T00:00:00Z', 'USD', 0, 'no-shipping-required', 0, $2, 0,
                 '{}', 'Complete', 0)",
        )
        .bind(number)
        .bind(billing)
        .execute(&mut connection)
        .await
        .expect("an old order row");
    }
    let (status, old) = app.get("/orders/OLD-1", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{old}");
    assert_eq!(old["billing_address"], json!({"first_name": "Ann", "country": "US"}), "the record's string fields");
    assert_eq!(old["shipping_address"], Value::Null);
    for number in ["OLD-2", "OLD-3"] {
        let (status, old) = app.get(&format!("/orders/{number}"), ADMIN_TOKEN).await;
        assert_eq!(status, StatusCode::OK, "{old}");
        assert_eq!((&old["billing_address"], &old["shipping_address"]), (&Value::Null, &Value::Null), "{old}");
    }
    let (status, list) = app.get("/orders", ADMIN_TOKEN).await;
    assert_eq!((status, list["count"].as_u64()), (StatusCode::OK, Some(3)), "{list}");
}

/// `POST /orders`'s body as the host took it before addresses were records
/// (services/checkout.rs before d4a8470, the records as they were there):
/// its serde_json serialization, in this field order, was the digest that
/// tells a replay from a reused key. `billing_address` was any JSON value,
/// serialized with its keys sorted and its nulls kept.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PreUpgradeCheckout {
    user: PreUpgradeUser,
    basket: Vec<PreUpgradeBasketLine>,
    #[serde(default)]
    shipping_method: Option<String>,
    #[serde(default)]
    shipping_charge: Option<String>,
    #[serde(default)]
    billing_address: Value,
    total: String,
    currency: String,
    payment: PreUpgradePayment,
    #[serde(default)]
    email_opt_in: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PreUpgradeUser {
    username: String,
    email: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PreUpgradeBasketLine {
    sku: String,
    quantity: u32,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PreUpgradePayment {
    processor: String,
    #[serde(default)]
    token: String,
}

/// The request hash the host recorded for `body` before the upgrade.
fn pre_upgrade_request_hash(body: &Value) -> String {
    use sha2::Digest;
    let body: PreUpgradeCheckout = serde_json::from_value(body.clone()).expect("a body the old host took");
    hex::encode(sha2::Sha256::digest(serde_json::to_vec(&body).expect("JSON")))
}

/// A storefront that placed a checkout before the upgrade and retries it
/// after, with the same Idempotency-Key and the same body, gets its order
/// (one charge), whether that body's billing address had a `null` field
/// (which the address record drops) or keys the record does not have
/// (which it refuses). A new request with such a body is still refused,
/// naming the field, before anything is charged.
async fn a_key_sent_before_the_upgrade_replays_whatever_its_billing_address_held(db: Db) {
    let app = TestApp::spawn(db).await;
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&app.database_url).await.expect("connect");
    let with_billing = |address: Value| {
        let mut body = checkout("59.00", "tok_success");
        body["billing_address"] = address;
        body
    };
    let with_a_null = with_billing(json!({"first_name": "Alice", "line1": "1 Main St", "line2": null, "country": "US"}));
    let with_foreign_keys =
        with_billing(json!({"first_name": "Alice", "company": "edX", "line3": "Suite 5", "postcode": 2139, "country": "US"}));
    let mut answers = Vec::new();
    for (key, sent_before) in [("before-the-upgrade-1", &with_a_null), ("before-the-upgrade-2", &with_foreign_keys)] {
        // The checkout and order the old host made of that body: placed here
        // with the address's fields the record takes, then given the old
        // host's request hash and its record of the request (the billing
        // address as sent, no shipping address).
        let taken = with_billing(json!({"first_name": "Alice", "country": "US"}));
        let (status, placed) = app.place(&taken, Some(key)).await;
        assert_eq!(status, StatusCode::CREATED, "{placed}");
        let request: String = sqlx::query_scalar("SELECT request FROM checkouts WHERE idempotency_key = $1")
            .bind(key)
            .fetch_one(&mut connection)
            .await
            .expect("the checkout's record");
        let mut request: Value = serde_json::from_str(&request).expect("a JSON record");
        request["billing_address"] = sent_before["billing_address"].clone();
        request.as_object_mut().expect("an object").remove("shipping_address");
        sqlx::query("UPDATE checkouts SET request_hash = $1, request = $2 WHERE idempotency_key = $3")
            .bind(pre_upgrade_request_hash(sent_before))
            .bind(request.to_string())
            .bind(key)
            .execute(&mut connection)
            .await
            .expect("the old host's checkout");

        let (status, replayed) = app.place(sent_before, Some(key)).await;
        answers.push((key, status, replayed["number"].clone(), replayed["error"]["message"].clone()));
    }
    assert_eq!(
        answers,
        [("before-the-upgrade-1", "EDX-100001"), ("before-the-upgrade-2", "EDX-100002")]
            .map(|(key, number)| (key, StatusCode::OK, json!(number), Value::Null)),
        "both keys replay their orders"
    );
    assert_eq!(app.charges(), 2, "one charge per key");

    // New requests: the record's fields only (a `null` one is no value).
    for key in [Some("after-the-upgrade"), None] {
        let (status, answer) = app.place(&with_foreign_keys, key).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], "billing_address.company", "{answer}");
    }
    assert_eq!(app.charges(), 2, "nothing more charged");
    let (status, placed) = app.place(&with_a_null, Some("after-the-upgrade")).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["billing_address"], json!({"first_name": "Alice", "line1": "1 Main St", "country": "US"}), "{placed}");
}
