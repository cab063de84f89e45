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
