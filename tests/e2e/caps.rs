//! What a module may keep on an order (`[modules.limits]`
//! `line_attributes_bytes`, `order_attributes_bytes`, `note_bytes`): a line
//! over a cap fails, naming the module, the key and the size; the other
//! lines and modules are not affected.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, Order};
use fulfillment_host::runtime::Runtime;
use serde_json::json;

use crate::support::{self, line, module_entry, notes_for, with_limits};

/// The fixture (completing Seat lines as `behaviour` says) before donation.
async fn runtime(behaviour: &str, config: &[(&str, &str)], limits: &[(&str, &str)]) -> Runtime {
    let mut fixture = vec![("claim", "Seat"), ("behaviour", behaviour)];
    fixture.extend_from_slice(config);
    let toml = [
        with_limits(module_entry("big", "misbehaving", &[], &fixture), limits),
        module_entry("donation", "donation", &[], &[]),
    ]
    .join("\n");
    support::runtime(&toml).await
}

async fn dispatched(runtime: &Runtime, number: &str) -> Order {
    let mut order = support::order(
        number,
        vec![line(1, "Seat", "S1", json!({})), line(2, "Seat", "S2", json!({})), line(3, "Donation", "D", json!({}))],
    );
    dispatch::fulfill_order(runtime, &mut order).await.expect("dispatch runs");
    order
}

#[tokio::test]
async fn attributes_over_the_line_cap_fail_the_line_and_nothing_of_it_is_kept() {
    // One attribute `payload` of 2,000 bytes: 2,007 bytes with its name.
    let runtime = runtime("huge-output", &[("output_bytes", "2000")], &[("line_attributes_bytes", "1000")]).await;
    let order = dispatched(&runtime, "EDX-800").await;
    assert_eq!(order.lines[0].status, LineStatus::ServerError);
    assert!(order.lines[0].attributes.is_empty(), "{:?}", order.lines[0].attributes);
    assert_eq!(
        notes_for(&order, 1),
        ["module big would keep 2007 bytes of attributes on line 1, over its limit of 1000 bytes (line_attributes_bytes); none of its answer for the line is used"]
    );
    assert_eq!(order.lines[2].status, LineStatus::Complete, "the other module's line");
}

#[tokio::test]
async fn attributes_over_the_order_cap_fail_the_line_that_goes_past_it() {
    // 607 bytes per line: the first fits in 1,000, the second does not.
    let runtime = runtime("huge-output", &[("output_bytes", "600")], &[("order_attributes_bytes", "1000")]).await;
    let order = dispatched(&runtime, "EDX-801").await;
    let statuses: Vec<_> = order.lines.iter().map(|line| line.status).collect();
    assert_eq!(statuses, [LineStatus::Complete, LineStatus::ServerError, LineStatus::Complete]);
    assert_eq!(order.lines[0].attributes["payload"].len(), 600);
    assert_eq!(
        notes_for(&order, 2),
        ["module big would keep 1214 bytes of attributes on its lines of order EDX-801 with line 2, over its limit of 1000 bytes (order_attributes_bytes); none of its answer for the line is used"]
    );
}

#[tokio::test]
async fn a_note_longer_than_note_bytes_is_cut_and_says_so() {
    let runtime = runtime("long-note", &[("note_length", "10000")], &[("note_bytes", "100")]).await;
    let order = dispatched(&runtime, "EDX-802").await;
    assert_eq!(order.lines[0].status, LineStatus::Complete);
    let note = &notes_for(&order, 1)[0];
    assert_eq!(note, &format!("{}… (9900 bytes cut) (note_bytes)", "n".repeat(100)));
}

#[tokio::test]
async fn the_default_caps_keep_a_normal_order_whole() {
    let runtime = runtime("huge-output", &[("output_bytes", "10000")], &[]).await;
    let order = dispatched(&runtime, "EDX-803").await;
    assert!(order.lines.iter().all(|line| line.status == LineStatus::Complete), "{:?}", order.notes);
}

#[tokio::test]
async fn a_revoke_reason_longer_than_note_bytes_is_cut() {
    let runtime = runtime("complete", &[("revoke_reason_length", "5000")], &[("note_bytes", "10")]).await;
    let order = dispatched(&runtime, "EDX-804").await;
    assert_eq!(order.lines[0].status, LineStatus::Complete);
    let result = dispatch::revoke_line(&runtime, &order, 1, 1).await.expect("revoke runs");
    assert_eq!(
        result,
        fulfillment_host::runtime::RevokeResult::NotRevoked {
            reason: format!("{}… (4990 bytes cut) (note_bytes)", "r".repeat(10))
        }
    );
}
