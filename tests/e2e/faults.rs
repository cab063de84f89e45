//! A module that misbehaves fails only its own lines; the other modules'
//! lines and the next orders are not affected.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, Order, OrderStatus};
use fulfillment_host::runtime::Runtime;
use serde_json::json;

use crate::support::{self, line, module_entry, notes_for};

/// The misbehaving fixture (claiming `Seat` lines) before a donation module.
async fn runtime_with(behaviour: &str, claim: &str) -> Runtime {
    let toml = [
        module_entry("misbehaving", "misbehaving", &[], &[("claim", claim), ("behaviour", behaviour)]),
        module_entry("donation", "donation", &[], &[]),
    ]
    .join("\n");
    support::runtime(&toml).await
}

fn seats_and_a_donation(number: &str) -> Order {
    support::order(
        number,
        vec![
            line(1, "Seat", "S1", json!({})),
            line(2, "Seat", "S2", json!({})),
            line(3, "Donation", "D", json!({})),
        ],
    )
}

async fn dispatched(runtime: &Runtime, number: &str) -> Order {
    let mut order = seats_and_a_donation(number);
    dispatch::fulfill_order(runtime, &mut order).await.expect("dispatch runs");
    order
}

fn statuses(order: &Order) -> Vec<LineStatus> {
    order.lines.iter().map(|line| line.status).collect()
}

#[tokio::test]
async fn a_trap_in_fulfill_product_fails_only_that_modules_lines_and_names_the_panic() {
    let runtime = runtime_with("trap-in-fulfill", "Seat").await;
    let order = dispatched(&runtime, "EDX-300").await;
    assert_eq!(statuses(&order), [LineStatus::ServerError, LineStatus::ServerError, LineStatus::Complete]);
    assert_eq!(order.status, OrderStatus::FulfillmentError);
    let note = &notes_for(&order, 1)[0];
    assert!(note.starts_with("module misbehaving failed in fulfill-product: trap:"), "{note}");
    assert!(note.contains("fixture panic in fulfill-product with 2 lines"), "the panic message is in the note: {note}");
    assert_eq!(order.notes.iter().filter(|note| note.module.as_deref() == Some("misbehaving")).count(), 2);

    // The next order runs in a fresh instance: the fault left nothing behind.
    let next = dispatched(&runtime, "EDX-301").await;
    assert_eq!(statuses(&next)[2], LineStatus::Complete);
}

#[tokio::test]
async fn a_trap_in_supports_line_leaves_the_line_to_later_modules_and_retryable() {
    let runtime = runtime_with("trap-in-supports", "*").await;
    let order = dispatched(&runtime, "EDX-302").await;
    // It trapped on line 1: it claimed nothing. The donation module still
    // claims its line; the seats, which no module claimed while one of them
    // was broken, are server errors (a retry may succeed), not configuration errors.
    assert_eq!(statuses(&order), [LineStatus::ServerError, LineStatus::ServerError, LineStatus::Complete]);
    let note = &notes_for(&order, 1)[0];
    assert!(
        note.starts_with("No fulfillment module claimed line 1 (product type `Seat`, sku S1), but module misbehaving failed in supports-line: trap:"),
        "{note}"
    );
    assert_eq!(order.lines[2].fulfilled_by.as_deref(), Some("donation"));
}

#[tokio::test]
async fn a_missing_outcome_fails_only_that_line() {
    let runtime = runtime_with("omit-first", "Seat").await;
    let order = dispatched(&runtime, "EDX-303").await;
    assert_eq!(statuses(&order), [LineStatus::ServerError, LineStatus::Complete, LineStatus::Complete]);
    assert_eq!(notes_for(&order, 1), ["module misbehaving returned no outcome for line 1"]);
}

#[tokio::test]
async fn an_outcome_for_a_line_not_given_voids_all_the_modules_outcomes() {
    let runtime = runtime_with("unknown-line", "Seat").await;
    let order = dispatched(&runtime, "EDX-304").await;
    assert_eq!(statuses(&order), [LineStatus::ServerError, LineStatus::ServerError, LineStatus::Complete]);
    assert_eq!(
        notes_for(&order, 2),
        ["module misbehaving returned an outcome for line 4242424242, which it was not given; none of its outcomes are used"]
    );
}

#[tokio::test]
async fn two_outcomes_for_one_line_void_all_the_modules_outcomes() {
    let runtime = runtime_with("duplicate", "Seat").await;
    let order = dispatched(&runtime, "EDX-305").await;
    assert_eq!(statuses(&order), [LineStatus::ServerError, LineStatus::ServerError, LineStatus::Complete]);
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving returned two outcomes for line 1; none of its outcomes are used"]
    );
}

#[tokio::test]
async fn an_http_call_outside_allowed_hosts_is_refused() {
    let toml = module_entry(
        "misbehaving",
        "misbehaving",
        &[],
        &[("claim", "*"), ("behaviour", "http-get"), ("url", "http://127.0.0.1:9/")],
    );
    let runtime = support::runtime(&toml).await;
    let mut order = support::order("EDX-306", vec![line(1, "Seat", "S1", json!({}))]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving: the host refused the request: http://127.0.0.1:9 is not in allowed_hosts of module misbehaving"]
    );
}
