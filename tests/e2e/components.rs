//! The JavaScript and Python example modules (plugins/gift-card, built with
//! componentize-js; plugins/subscription, built with componentize-py; both
//! by scripts/build-components) in one host beside the Rust modules, over
//! the real HTTP API on both databases: claims, outcomes, failures (down,
//! 500, no answer, no config) and a staff retry, HTTP through the host
//! (allowed hosts, credentials), limits, and refunds. The services they call are the stand-ins of
//! `fulfillment_tests::digital`, one per module.
//!
//! The components are 12 and 19 MB: each is compiled once for the whole
//! test binary ([`compiled`]), on the binary's shared engine.

use std::path::Path;

use fulfillment_tests::artifacts::component_path;
use fulfillment_tests::digital::{DigitalServices, INJECTED_FAILURE};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::harness::{ADMIN_TOKEN, Db, TestApp, statuses};
use crate::on_both_databases;
use crate::support;

on_both_databases!(
    a_mixed_order_is_claimed_by_each_module_and_completes,
    a_service_down_or_failing_fails_its_lines_until_a_staff_retry,
    a_service_that_does_not_answer_is_a_timeout,
    missing_config_is_a_configuration_error,
    the_host_refuses_a_destination_not_allowed,
    a_module_over_its_limits_fails_only_its_own_lines,
    a_refund_cancels_the_cards_and_the_subscription,
);

/// The API key the host holds for each service and adds to every request.
const SERVICE_KEY: &str = "digital-service-key";

/// Compiles both components once into the test binary's engine, so that
/// the tests of this file (which run at once) do not each compile them.
async fn compiled() {
    static COMPILED: OnceCell<()> = OnceCell::const_new();
    COMPILED
        .get_or_init(|| async {
            let toml = [module("gift-card", None, None, &[]), module("subscription", None, None, &[])].join("\n");
            let runtime = support::try_runtime(&toml).await.expect("the JavaScript and Python modules load");
            assert_eq!(runtime.modules().len(), 2);
        })
        .await;
}

/// A `[[modules]]` entry for the component `name` calling the service at
/// `service_url` (none: no `service_url` in its config), allowed to reach
/// `allowed` (none: the service), with the host's API key for it, and
/// `limits` (TOML values).
fn module(name: &str, service_url: Option<&str>, allowed: Option<&str>, limits: &[(&str, &str)]) -> String {
    let allowed: Vec<&str> = allowed.or(service_url).into_iter().collect();
    let mut entry = format!(
        "[[modules]]\nname = {name:?}\npath = {:?}\nallowed_hosts = {allowed:?}\n",
        component_path(name).display().to_string()
    );
    if let Some(url) = service_url {
        entry.push_str(&format!("[modules.config]\nservice_url = {url:?}\n"));
    }
    for destination in allowed {
        entry.push_str(&format!(
            "[modules.credentials.{destination:?}]\nkind = \"header\"\nheader = \"X-Api-Key\"\nsecret = {{ file = {:?} }}\n",
            secret_file().display().to_string()
        ));
    }
    if !limits.is_empty() {
        entry.push_str("[modules.limits]\n");
        for (key, value) in limits {
            entry.push_str(&format!("{key} = {value}\n"));
        }
    }
    entry
}

/// The file the host reads [`SERVICE_KEY`] from.
fn secret_file() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("digital-secrets");
    std::fs::create_dir_all(&dir).expect("a folder for the secret");
    let path = dir.join("service-key");
    // Many tests write it at once: each writes a copy of its own and
    // renames it into place, so that no reader sees half a file.
    let scratch = dir.join(format!("service-key.{}.{:?}", std::process::id(), std::thread::current().id()));
    std::fs::write(&scratch, format!("{SERVICE_KEY}\n")).expect("write the secret");
    std::fs::rename(&scratch, &path).expect("move the secret into place");
    path
}

/// The catalog's gift card (25.00, for bob) and subscription (12.00 a
/// year of the pro plan).
const PRODUCTS: &str = r#"
[[products]]
sku = "GIFT-25"
product_type = "Gift Card"
title = "Gift card, 25 USD"
price = "25.00"
currency = "USD"
attributes = { gift_card_recipient = "bob@example.com" }

[[products]]
sku = "SUB-PRO"
product_type = "Subscription"
title = "Pro plan, a year"
price = "12.00"
currency = "USD"
attributes = { plan = "pro", months = "12" }
"#;

/// A host with the shipped modules and the two modules (`gift_card` and
/// `subscription`: their `[[modules]]` entries).
async fn spawn(db: Db, gift_card: &str, subscription: &str) -> TestApp {
    compiled().await;
    TestApp::spawn_with(db, &format!("{PRODUCTS}\n{gift_card}\n{subscription}")).await
}

/// Each module's own stand-in, and a host whose modules call them.
async fn spawn_with_services(db: Db) -> (TestApp, DigitalServices, DigitalServices) {
    let cards = DigitalServices::start().await.expect("the gift-card stand-in starts");
    let subscriptions = DigitalServices::start().await.expect("the subscription stand-in starts");
    cards.require_api_key(SERVICE_KEY);
    subscriptions.require_api_key(SERVICE_KEY);
    let app = spawn(
        db,
        &module("gift-card", Some(&cards.url()), None, &[]),
        &module("subscription", Some(&subscriptions.url()), None, &[]),
    )
    .await;
    (app, cards, subscriptions)
}

/// A seat, a donation, two gift cards and a subscription: 121.00, billed in Germany.
fn mixed_checkout() -> Value {
    json!({
        "user": {"username": "alice", "email": "alice@example.com"},
        "basket": [
            {"sku": "SEAT", "quantity": 1},
            {"sku": "DONATION", "quantity": 1},
            {"sku": "GIFT-25", "quantity": 2},
            {"sku": "SUB-PRO", "quantity": 1},
        ],
        "billing_address": {"country": "DE", "city": "Berlin"},
        "total": "121.00",
        "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    })
}

const GIFT_LINE: usize = 2;
const SUBSCRIPTION_LINE: usize = 3;

async fn place_mixed(app: &TestApp) -> Value {
    let (status, order) = app.place(&mixed_checkout(), None).await;
    assert!(matches!(status, StatusCode::CREATED | StatusCode::ACCEPTED), "{status}: {order}");
    app.settled_order(order["number"].as_str().expect("a number")).await
}

/// The notes about line `line_id` of `order`.
fn notes(order: &Value, line_id: usize) -> Vec<String> {
    order["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter(|note| note["line_id"] == json!(line_id + 1))
        .map(|note| note["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn a_mixed_order_is_claimed_by_each_module_and_completes(db: Db) {
    let (app, cards, subscriptions) = spawn_with_services(db).await;
    let order = place_mixed(&app).await;
    assert_eq!(order["status"], "Complete", "{order}");
    let claimed: Vec<&str> = order["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| line["fulfilled_by"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(claimed, ["enrollment", "donation", "gift-card", "subscription"], "{order}");

    // One card per unit, issued with the line's key and the unit's number,
    // for the product's recipient, at the unit price; stored on the line.
    let gift = &order["lines"][GIFT_LINE];
    assert_eq!(gift["attributes"]["gift_card_codes"], "GC-000001,GC-000002", "{gift}");
    let issued = cards.requests();
    let keys: Vec<Option<&str>> = issued.iter().map(|request| request.idempotency_key.as_deref()).collect();
    assert_eq!(keys, [Some("EDX-100001-3-1"), Some("EDX-100001-3-2")], "{issued:?}");
    assert!(issued.iter().all(|request| request.api_key.as_deref() == Some(SERVICE_KEY)), "the host added the key: {issued:?}");
    assert_eq!(issued[0].body["billing_country"], "DE", "{issued:?}");
    assert_eq!(issued[0].body["shipping_method"], "no-shipping-required", "{issued:?}");
    let issued_cards = cards.cards();
    assert_eq!(issued_cards.len(), 2);
    assert!(issued_cards.iter().all(|card| card.minor_units == 2500 && card.currency == "USD" && card.recipient_email == "bob@example.com"), "{issued_cards:?}");

    // The subscription: the plan and months of the product, the billing country.
    let subscription = &order["lines"][SUBSCRIPTION_LINE];
    assert_eq!(subscription["attributes"]["subscription_id"], "sub-1", "{subscription}");
    let granted = subscriptions.subscriptions();
    assert_eq!(granted.len(), 1);
    assert_eq!(
        (granted[0].plan.as_str(), granted[0].months, granted[0].email.as_str(), granted[0].billing_country.as_deref()),
        ("pro", 12, "alice@example.com", Some("DE"))
    );
    let requests = subscriptions.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].idempotency_key.as_deref(), Some("EDX-100001-4"));
    assert_eq!(requests[0].api_key.as_deref(), Some(SERVICE_KEY));
    // The Rust modules did their part: the seat reached the LMS.
    assert_eq!(app.lms.requests().len(), 1);
}

async fn a_service_down_or_failing_fails_its_lines_until_a_staff_retry(db: Db) {
    let (app, cards, subscriptions) = spawn_with_services(db).await;
    let cards_address = cards.stop().await;
    subscriptions.fail_with(Some(500));
    let order = place_mixed(&app).await;
    assert_eq!(
        statuses(&order),
        ["Complete", "Complete", "Fulfillment Network Error", "Fulfillment Server Error"],
        "{order}"
    );
    let gift_notes = notes(&order, GIFT_LINE);
    assert!(gift_notes.iter().any(|note| note.contains("could not reach the gift-card service to issue card 1 of 2")), "{gift_notes:?}");
    let subscription_notes = notes(&order, SUBSCRIPTION_LINE);
    assert!(
        subscription_notes.iter().any(|note| note.contains(&format!("subscription service answered 500 to grant plan pro for line 4: {INJECTED_FAILURE}"))),
        "{subscription_notes:?}"
    );

    // Both services are back: a staff retry sends the two lines again, with
    // the same keys, and completes the order.
    let cards = DigitalServices::start_on(cards_address).await.expect("the gift-card stand-in restarts");
    cards.require_api_key(SERVICE_KEY);
    subscriptions.fail_with(None);
    let (status, retried) = app.put("/orders/EDX-100001/fulfill", None, ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["status"], "Complete", "{retried}");
    assert_eq!(retried["lines"][GIFT_LINE]["attributes"]["gift_card_codes"], "GC-000001,GC-000002");
    assert_eq!(retried["lines"][SUBSCRIPTION_LINE]["attributes"]["subscription_id"], "sub-1");
    let keys: Vec<Option<String>> = subscriptions.requests().into_iter().map(|request| request.idempotency_key).collect();
    assert_eq!(keys, [Some("EDX-100001-4".to_string()), Some("EDX-100001-4".to_string())], "the failed try and the retry");
    assert_eq!(app.lms.requests().len(), 1, "the seat was not sent again");
}

async fn a_service_that_does_not_answer_is_a_timeout(db: Db) {
    let cards = DigitalServices::start().await.expect("the gift-card stand-in starts");
    let subscriptions = DigitalServices::start().await.expect("the subscription stand-in starts");
    cards.hang();
    subscriptions.hang();
    let quick = [("http_timeout_ms", "300")];
    let app = spawn(
        db,
        &module("gift-card", Some(&cards.url()), None, &quick),
        &module("subscription", Some(&subscriptions.url()), None, &quick),
    )
    .await;
    let order = place_mixed(&app).await;
    assert_eq!(
        statuses(&order),
        ["Complete", "Complete", "Fulfillment Timeout Error", "Fulfillment Timeout Error"],
        "{order}"
    );
    let gift_notes = notes(&order, GIFT_LINE);
    assert!(
        gift_notes.iter().any(|note| note.contains("the gift-card service did not answer in time to issue card 1 of 2 for line 3")),
        "{gift_notes:?}"
    );
    let subscription_notes = notes(&order, SUBSCRIPTION_LINE);
    assert!(
        subscription_notes.iter().any(|note| note.contains("the subscription service did not answer in time to grant plan pro for line 4")),
        "{subscription_notes:?}"
    );
}

async fn missing_config_is_a_configuration_error(db: Db) {
    let app = spawn(db, &module("gift-card", None, None, &[]), &module("subscription", None, None, &[])).await;
    let order = place_mixed(&app).await;
    assert_eq!(
        statuses(&order),
        ["Complete", "Complete", "Fulfillment Configuration Error", "Fulfillment Configuration Error"],
        "{order}"
    );
    for (line, module) in [(GIFT_LINE, "gift-card"), (SUBSCRIPTION_LINE, "subscription")] {
        let expected = format!("module {module}: config key `service_url` is not set in settings.toml");
        assert!(notes(&order, line).iter().any(|note| note.ends_with(&expected)), "{:?}", notes(&order, line));
    }
}

async fn the_host_refuses_a_destination_not_allowed(db: Db) {
    let cards = DigitalServices::start().await.expect("the gift-card stand-in starts");
    let subscriptions = DigitalServices::start().await.expect("the subscription stand-in starts");
    // Each module may reach only the other's service.
    let app = spawn(
        db,
        &module("gift-card", Some(&cards.url()), Some(&subscriptions.url()), &[]),
        &module("subscription", Some(&subscriptions.url()), Some(&cards.url()), &[]),
    )
    .await;
    let order = place_mixed(&app).await;
    assert_eq!(
        statuses(&order),
        ["Complete", "Complete", "Fulfillment Configuration Error", "Fulfillment Configuration Error"],
        "{order}"
    );
    let gift_notes = notes(&order, GIFT_LINE);
    assert!(
        gift_notes.iter().any(|note| note.contains("module gift-card: the host refused the request to issue card 1 of 2")),
        "{gift_notes:?}"
    );
    let subscription_notes = notes(&order, SUBSCRIPTION_LINE);
    assert!(
        subscription_notes.iter().any(|note| note.contains("module subscription: the host refused the request to grant plan pro")),
        "{subscription_notes:?}"
    );
    assert!(cards.requests().is_empty() && subscriptions.requests().is_empty(), "nothing was sent");
}

async fn a_module_over_its_limits_fails_only_its_own_lines(db: Db) {
    let cards = DigitalServices::start().await.expect("the gift-card stand-in starts");
    let subscriptions = DigitalServices::start().await.expect("the subscription stand-in starts");
    // 1 MiB of linear memory: less than either language's runtime starts
    // with (about 9 MiB for SpiderMonkey, more for CPython), so neither can
    // even answer `describe`; the operator chose to run without them.
    let tiny = [("memory_bytes", "1048576")];
    let disabled = |entry: String| entry.replacen("\n[modules.", "\non_load_failure = \"disable\"\n[modules.", 1);
    let app = spawn(
        db,
        &disabled(module("gift-card", Some(&cards.url()), None, &tiny)),
        &disabled(module("subscription", Some(&subscriptions.url()), None, &tiny)),
    )
    .await;
    let order = place_mixed(&app).await;
    assert_eq!(
        statuses(&order),
        ["Complete", "Complete", "Fulfillment Configuration Error", "Fulfillment Configuration Error"],
        "only the two modules' lines fail: {order}"
    );
    let (status, modules) = app.get("/modules", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{modules}");
    for name in ["gift-card", "subscription"] {
        let text = modules.to_string();
        assert!(text.contains(name) && text.contains("memory limit of 1 MiB (memory_bytes)"), "{modules}");
    }
    assert!(cards.requests().is_empty() && subscriptions.requests().is_empty());
}

async fn a_refund_cancels_the_cards_and_the_subscription(db: Db) {
    let (app, cards, subscriptions) = spawn_with_services(db).await;
    let order = place_mixed(&app).await;
    assert_eq!(order["status"], "Complete", "{order}");
    let body = json!({"order_number": "EDX-100001", "line_ids": [GIFT_LINE + 1, SUBSCRIPTION_LINE + 1]});
    let (status, created) = app.send(app.http.post(format!("{}/refunds", app.base)).json(&body), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("an id");
    let (status, processed) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert!(matches!(status, StatusCode::OK | StatusCode::ACCEPTED), "{status}: {processed}");
    let refund = app.settled_refund(id).await;
    assert_eq!(refund["status"], "Complete", "{refund}");

    assert!(cards.cards().iter().all(|card| card.cancelled), "{:?}", cards.cards());
    assert!(subscriptions.subscriptions().iter().all(|subscription| subscription.cancelled));
    let refund_key = format!("EDX-100001-3-refund-{id}");
    let cancels: Vec<(String, Option<String>)> = cards
        .requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/cancel"))
        .map(|request| (request.path, request.idempotency_key))
        .collect();
    assert_eq!(
        cancels,
        [
            ("/api/v1/cards/GC-000001/cancel".to_string(), Some(refund_key.clone())),
            ("/api/v1/cards/GC-000002/cancel".to_string(), Some(refund_key)),
        ]
    );
    let cancelled = subscriptions.requests().into_iter().last().expect("a cancel");
    assert_eq!(
        (cancelled.path.as_str(), cancelled.idempotency_key.as_deref()),
        ("/api/v1/subscriptions/sub-1/cancel", Some(format!("EDX-100001-4-refund-{id}").as_str()))
    );
}
