//! Contract versions side by side: a module built against the frozen WIT
//! 1.0 (tests/fixtures/legacy-v1-0) and modules built against 1.1 (the
//! shipped ones, the misbehaving fixture) in one host, each served the
//! records of its own version.

use fulfillment_host::dispatch;
use fulfillment_host::model::{Address, LineStatus, Money, OrderStatus, Shipping};
use fulfillment_host::runtime::{ContractVersion, ModuleFunction, RevokeResult};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Db, TestApp};
use crate::support::{self, line, module_entry, notes_for};

/// The legacy 1.0 module claiming "Legacy Donation", and two products of it.
fn legacy_host_toml() -> String {
    let mut toml = module_entry("legacy", "legacy-v1-0", &[], &[("claim", "Legacy Donation")]);
    for sku in ["LEGACY-A", "LEGACY-B"] {
        toml.push_str(&format!(
            "\n[[products]]\nsku = \"{sku}\"\nproduct_type = \"Legacy Donation\"\ntitle = \"{sku}\"\nprice = \"5.00\"\ncurrency = \"USD\"\n"
        ));
    }
    toml
}

fn line_of<'a>(order: &'a Value, sku: &str) -> &'a Value {
    order["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|line| line["sku"] == sku))
        .unwrap_or_else(|| panic!("no {sku} line in {order}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_0_module_and_1_1_modules_fulfill_one_order_in_one_host() {
    let app = TestApp::spawn_with(Db::Sqlite, &legacy_host_toml()).await;
    let (status, modules) = app.get("/modules", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{modules}");
    let contract = |name: &str| {
        modules
            .as_array()
            .and_then(|modules| modules.iter().find(|module| module["name"] == name))
            .map(|module| module["contract"].clone())
    };
    assert_eq!(contract("legacy"), Some(json!("1.0.0")), "{modules}");
    assert_eq!(contract("donation"), Some(json!("1.1.0")), "{modules}");
    assert_eq!(contract("broken"), Some(Value::Null), "a module that did not load has no version: {modules}");

    let basket = json!({
        "user": {"username": "alice", "email": "alice@example.com"},
        "basket": [{"sku": "LEGACY-A", "quantity": 1}, {"sku": "DONATION", "quantity": 1}, {"sku": "LEGACY-B", "quantity": 1}],
        "total": "20.00",
        "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    });
    let (status, placed) = app.place(&basket, None).await;
    assert!(matches!(status, StatusCode::CREATED | StatusCode::ACCEPTED), "{status}: {placed}");
    let number = placed["number"].as_str().expect("a number").to_string();
    let order = app.settled_order(&number).await;
    assert_eq!(order["status"], "Complete", "{order}");
    for sku in ["LEGACY-A", "LEGACY-B"] {
        let legacy = line_of(&order, sku);
        assert_eq!(legacy["fulfilled_by"], "legacy", "{legacy}");
        // Asked line by line, as 1.0 defines: once for each of its two lines.
        assert_eq!(legacy["attributes"]["supports_line_calls"], "2", "{legacy}");
        assert_eq!(legacy["attributes"]["seen_total"], "2000 USD", "{legacy}");
        let key = format!("{number}-{}", legacy["id"]);
        assert_eq!(legacy["attributes"]["seen_idempotency_key"], json!(key), "{legacy}");
    }
    assert_eq!(line_of(&order, "DONATION")["fulfilled_by"], "donation", "{order}");

    // A refund revokes through 1.0's revoke-line (no refund record in 1.0).
    let legacy_id = line_of(&order, "LEGACY-A")["id"].clone();
    let refund = json!({"order_number": number, "line_ids": [legacy_id]});
    let (status, created) = app
        .send(app.http.post(format!("{}/refunds", app.base)).json(&refund), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("an id");
    let (status, approved) = app.put(&format!("/refunds/{id}/process"), Some(json!({"action": "approve"})), ADMIN_TOKEN).await;
    assert!(status.is_success(), "{status}: {approved}");
    let refund = app.settled_refund(id).await;
    assert_eq!(refund["status"], "Complete", "{refund}");
    let (_, order) = app.get(&format!("/orders/{number}"), ADMIN_TOKEN).await;
    let said = order["notes"].to_string();
    assert!(said.contains(&format!("legacy 1.0 module revoked line {legacy_id}")), "{said}");
}

/// The misbehaving fixture (1.1) doing `behaviour`, before a donation module.
async fn fixture(behaviour: &str) -> fulfillment_host::runtime::Runtime {
    let toml = module_entry("misbehaving", "misbehaving", &[], &[("claim", "Seat"), ("behaviour", behaviour)])
        + &module_entry("donation", "donation", &[], &[]);
    support::runtime(&toml).await
}

#[tokio::test]
async fn a_1_1_module_sees_the_shipping_the_addresses_and_the_refund() {
    let runtime = fixture("echo-order").await;
    let module = runtime.module("misbehaving").expect("loaded");
    assert_eq!(module.contract_version(), ContractVersion::V1_1);
    let mut order = support::order("EDX-1101", vec![support::seat(1, "course-v1:edX+DemoX+Demo_Course", "verified")]);
    order.shipping = Shipping {
        method: "ups-ground".into(),
        charge: Money::parse("7.50", order.currency).expect("an amount"),
    };
    order.billing_address = Some(Address {
        first_name: Some("Ada".into()),
        country: Some("GB".into()),
        ..Address::default()
    });
    order.shipping_address = Some(Address {
        line1: Some("1 Main St".into()),
        city: Some("Boston".into()),
        state: Some("MA".into()),
        postcode: Some("02110".into()),
        country: Some("US".into()),
        phone_number: Some("+1 617 555 0100".into()),
        ..Address::default()
    });
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.status, OrderStatus::Complete, "{:?}", order.notes);
    let seen = &order.lines[0].attributes;
    assert_eq!(seen["shipping_method"], "ups-ground");
    assert_eq!(seen["shipping_charge"], "750 USD");
    assert_eq!(seen["billing"], "Ada|-|-|-|-|-|-|GB|-");
    assert_eq!(seen["shipping_to"], "-|-|1 Main St|-|Boston|MA|02110|US|+1 617 555 0100");

    match dispatch::revoke_line(&runtime, &order, 1, 42).await.expect("revoke runs") {
        RevokeResult::Revoked { note } => assert_eq!(note.as_deref(), Some("refund 42 key EDX-1101-1-refund-42")),
        other => panic!("not revoked: {other:?}"),
    }
}

#[tokio::test]
async fn a_1_1_module_is_asked_once_per_order_and_a_1_0_module_once_per_line() {
    let toml = module_entry("legacy", "legacy-v1-0", &[], &[("claim", "Legacy Donation")])
        + &module_entry("misbehaving", "misbehaving", &[], &[("claim", "Seat")]);
    let runtime = support::runtime(&toml).await;
    let lines = vec![
        line(1, "Legacy Donation", "L1", json!({})),
        support::seat(2, "course-v1:edX+DemoX+Demo_Course", "verified"),
        line(3, "Legacy Donation", "L3", json!({})),
        support::seat(4, "course-v1:edX+DemoX+Demo_Course", "audit"),
        line(5, "Legacy Donation", "L5", json!({})),
    ];
    let mut order = support::order("EDX-1102", lines);
    let report = dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.status, OrderStatus::Complete, "{:?}", order.notes);
    let legacy = runtime.module("legacy").expect("loaded").stats();
    let batched = runtime.module("misbehaving").expect("loaded").stats();
    assert_eq!(legacy.function(ModuleFunction::SupportsLine).calls, 3, "1.0: one call per line of its lane");
    assert_eq!(legacy.function(ModuleFunction::SupportsLines).calls, 0);
    assert_eq!(batched.function(ModuleFunction::SupportsLines).calls, 1, "1.1: one call for the order");
    assert_eq!(batched.function(ModuleFunction::SupportsLine).calls, 0);
    let calls: Vec<_> = report.calls.iter().map(|call| (call.module.as_str(), call.call, call.lines)).collect();
    assert!(calls.contains(&("legacy", "supports-line", 3)), "{calls:?}");
    assert!(calls.contains(&("misbehaving", "supports-lines", 2)), "{calls:?}");
    assert_eq!(order.line(3).map(|line| line.attributes["supports_line_calls"].as_str()), Some("3"));
}

#[tokio::test]
async fn a_batched_claim_with_the_wrong_number_of_answers_claims_nothing() {
    let runtime = fixture("short-claims").await;
    let mut order = support::order(
        "EDX-1103",
        vec![
            support::seat(1, "course-v1:edX+DemoX+Demo_Course", "verified"),
            support::seat(2, "course-v1:edX+DemoX+Demo_Course", "verified"),
            line(3, "Donation", "DON", json!({})),
        ],
    );
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.status, OrderStatus::FulfillmentError);
    assert_eq!(order.line(3).map(|line| line.status), Some(LineStatus::Complete), "the donation module is not affected");
    for seat in [1, 2] {
        assert_eq!(order.line(seat).map(|line| line.status), Some(LineStatus::ServerError));
        let notes = notes_for(&order, seat);
        assert!(
            notes.iter().any(|note| note.contains("misbehaving failed in supports-lines: answered 1 claims for 2 lines; supports-lines must answer once per line")),
            "{notes:?}"
        );
    }
}

#[tokio::test]
async fn a_module_built_against_a_version_not_served_is_refused_by_name() {
    let toml = module_entry("future", "future-v1-2", &[], &[]);
    let error = match support::try_runtime(&toml).await {
        Ok(_) => panic!("a 1.2 module must not load"),
        Err(error) => error.to_string(),
    };
    let path = fulfillment_tests::artifacts::module_path("future-v1-2");
    assert_eq!(
        error,
        format!(
            "module `future`: {}: it is built against commerce:fulfillment@1.2.0, which this host does not serve (it serves 1.0.0, 1.1.0); upgrade fulfillment-host, or rebuild the module against a version it serves",
            path.display()
        )
    );
}

/// The committed 1.0 binary (built once from tests/fixtures/legacy-v1-0),
/// claiming "Legacy Donation", with `config` and `allowed_hosts`.
fn prebuilt_legacy(allowed_hosts: &[&str], config: &[(&str, &str)]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/prebuilt/legacy-v1-0.wasm");
    let mut entry = format!(
        "[[modules]]\nname = \"legacy\"\npath = {:?}\nallowed_hosts = {allowed_hosts:?}\n[modules.config]\nclaim = \"Legacy Donation\"\n",
        path.display().to_string()
    );
    for (key, value) in config {
        entry.push_str(&format!("{key} = {value:?}\n"));
    }
    entry
}

#[tokio::test]
async fn the_committed_1_0_binary_uses_every_1_0_import_through_the_host() {
    // Two destinations on a port where nothing listens: one allowed (the
    // host tries it: connect-failed), one not (the host refuses it).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = closed.local_addr().expect("bound").port();
    drop(closed);
    let allowed = format!("http://127.0.0.1:{port}");
    for (allowed_hosts, expected) in [(vec![allowed.as_str()], "connect-failed"), (vec![], "refused")] {
        let toml = prebuilt_legacy(&allowed_hosts, &[("url", &format!("{allowed}/health"))]);
        let runtime = support::runtime(&toml).await;
        let module = runtime.module("legacy").expect("loaded");
        assert_eq!(module.contract_version(), ContractVersion::V1_0);
        for interface in ["config", "log", "http"] {
            let import = format!("commerce:fulfillment/{interface}@1.0.0");
            assert!(module.imports().contains(&import), "{import} in {:?}", module.imports());
        }
        let mut order = support::order("EDX-1104", vec![line(1, "Legacy Donation", "L1", json!({}))]);
        dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
        assert_eq!(order.status, OrderStatus::Complete, "{:?}", order.notes);
        assert_eq!(order.lines[0].attributes["http"], expected, "allowed_hosts = {allowed_hosts:?}");
    }
}

#[tokio::test]
async fn a_1_0_module_that_traps_mid_claim_keeps_its_earlier_claims_and_leaves_the_rest() {
    let toml = module_entry("legacy", "legacy-v1-0", &[], &[("claim", "Legacy Donation"), ("trap_on_line", "3")])
        + &module_entry("fallback", "misbehaving", &[], &[("claim", "Legacy Donation")]);
    let runtime = support::runtime(&toml).await;
    let lines = (1..=3).map(|id| line(id, "Legacy Donation", &format!("L{id}"), json!({}))).collect();
    let mut order = support::order("EDX-1105", lines);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    let status = |id| order.line(id).map(|line| (line.status, line.fulfilled_by.clone()));
    // Lines 1 and 2 were claimed before the trap: they are the legacy
    // module's, and fail with it; line 3 goes on to the next module.
    assert_eq!(status(1), Some((LineStatus::ServerError, Some("legacy".into()))));
    assert_eq!(status(2), Some((LineStatus::ServerError, Some("legacy".into()))));
    assert_eq!(status(3), Some((LineStatus::Complete, Some("fallback".into()))));
    let notes = notes_for(&order, 1);
    assert!(
        notes.iter().any(|note| note.contains("failed in supports-line: trap") && note.contains("legacy fixture panic in supports-line for line 3")),
        "{notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_1_module_gets_the_addresses_and_shipping_a_storefront_sent() {
    let toml = module_entry("books", "misbehaving", &[], &[("claim", "Book"), ("behaviour", "echo-order")])
        + "\n[[products]]\nsku = \"BOOK\"\nproduct_type = \"Book\"\ntitle = \"A book\"\nprice = \"30.00\"\ncurrency = \"USD\"\n";
    let app = TestApp::spawn_with(Db::Sqlite, &toml).await;
    let basket = json!({
        "user": {"username": "alice", "email": "alice@example.com"},
        "basket": [{"sku": "BOOK", "quantity": 1}],
        "shipping_method": "ups-ground",
        "shipping_charge": "7.50",
        "billing_address": {"first_name": "Alice", "last_name": "Liddell", "country": "GB"},
        "shipping_address": {"line1": "1 Main St", "city": "Boston", "state": "MA", "postcode": "02110", "country": "US"},
        "total": "37.50",
        "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"},
    });
    let (status, placed) = app.place(&basket, None).await;
    assert!(matches!(status, StatusCode::CREATED | StatusCode::ACCEPTED), "{status}: {placed}");
    let number = placed["number"].as_str().expect("a number").to_string();
    let order = app.settled_order(&number).await;
    assert_eq!(order["status"], "Complete", "{order}");
    let seen = &line_of(&order, "BOOK")["attributes"];
    assert_eq!(seen["shipping_method"], "ups-ground", "{seen}");
    assert_eq!(seen["shipping_charge"], "750 USD", "{seen}");
    assert_eq!(seen["billing"], "Alice|Liddell|-|-|-|-|-|GB|-", "{seen}");
    assert_eq!(seen["shipping_to"], "-|-|1 Main St|-|Boston|MA|02110|US|-", "{seen}");
}
