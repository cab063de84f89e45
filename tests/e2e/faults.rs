//! A module that misbehaves fails only its own lines; the other modules'
//! lines and the next orders are not affected. One test per fault, each
//! with the `misbehaving` fixture acting it out before a donation module.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, Order, OrderStatus};
use fulfillment_host::runtime::Runtime;
use serde_json::json;

use crate::support::{self, line, module_entry, notes_for, with_limits};

/// The misbehaving fixture (claiming `claim` lines) before a donation module.
async fn runtime_with(behaviour: &str, claim: &str) -> Runtime {
    runtime_limited(behaviour, claim, &[], &[]).await
}

/// The same with more `config` for the fixture and `[modules.limits]`.
async fn runtime_limited(behaviour: &str, claim: &str, config: &[(&str, &str)], limits: &[(&str, &str)]) -> Runtime {
    runtime_calling(behaviour, claim, &[], config, limits).await
}

/// The same with `allowed_hosts` for the fixture.
async fn runtime_calling(
    behaviour: &str,
    claim: &str,
    allowed: &[&str],
    config: &[(&str, &str)],
    limits: &[(&str, &str)],
) -> Runtime {
    let mut fixture_config = vec![("claim", claim), ("behaviour", behaviour)];
    fixture_config.extend_from_slice(config);
    let toml = [
        with_limits(module_entry("misbehaving", "misbehaving", allowed, &fixture_config), limits),
        module_entry("donation", "donation", &[], &[]),
    ]
    .join("\n");
    support::runtime(&toml).await
}

/// Dispatches a fault order, then checks that the donation line of it and
/// the whole next order went through; returns the fault order.
async fn survives(runtime: &Runtime, number: &str) -> Order {
    let order = dispatched(runtime, number).await;
    assert_eq!(order.lines[2].status, LineStatus::Complete, "the other module's line is fulfilled");
    let next = dispatched(runtime, &format!("{number}-NEXT")).await;
    assert_eq!(next.lines[2].status, LineStatus::Complete, "the next order goes through");
    order
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
async fn a_trap_in_supports_lines_leaves_the_line_to_later_modules_and_retryable() {
    let runtime = runtime_with("trap-in-supports", "*").await;
    let order = dispatched(&runtime, "EDX-302").await;
    // It trapped on line 1: it claimed nothing. The donation module still
    // claims its line; the seats, which no module claimed while one of them
    // was broken, are server errors (a retry may succeed), not configuration errors.
    assert_eq!(statuses(&order), [LineStatus::ServerError, LineStatus::ServerError, LineStatus::Complete]);
    let note = &notes_for(&order, 1)[0];
    assert!(
        note.starts_with("No fulfillment module claimed line 1 (product type `Seat`, sku S1), but module misbehaving failed in supports-lines: trap:"),
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
    let runtime = runtime_calling("http-get", "Seat", &[], &[("url", "http://127.0.0.1:9/")], &[]).await;
    let order = survives(&runtime, "EDX-306").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::ConfigurationError, LineStatus::ConfigurationError]);
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving: the host refused the request: http://127.0.0.1:9 is not in allowed_hosts of module misbehaving"]
    );
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_its_cpu_limit_as_a_timeout() {
    let runtime = runtime_limited("loop", "Seat", &[], &[("cpu_ms", "100")]).await;
    let order = survives(&runtime, "EDX-310").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::TimeoutError, LineStatus::TimeoutError]);
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving failed in fulfill-product: exceeded its CPU time limit of 100 ms (cpu_ms)"]
    );
}

#[tokio::test]
async fn a_loop_in_supports_lines_is_a_timeout_and_leaves_the_other_lines_to_later_modules() {
    let runtime = runtime_limited("loop-in-supports", "*", &[], &[("cpu_ms", "100")]).await;
    let order = survives(&runtime, "EDX-311").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::TimeoutError, LineStatus::TimeoutError]);
    assert_eq!(
        notes_for(&order, 1),
        ["No fulfillment module claimed line 1 (product type `Seat`, sku S1), but module misbehaving failed in supports-lines: exceeded its CPU time limit of 100 ms (cpu_ms)"]
    );
}

/// On one thread, a spinning module yields at every tick: another order
/// finishes while it spins, not after.
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_module_does_not_hold_the_thread_from_other_orders() {
    let runtime = runtime_limited("loop", "Seat", &[], &[("cpu_ms", "1000")]).await;
    let donation_done = std::sync::atomic::AtomicBool::new(false);
    let spinning = async {
        let order = dispatched(&runtime, "EDX-312").await;
        (order, donation_done.load(std::sync::atomic::Ordering::SeqCst))
    };
    let other = async {
        let mut order = support::order("EDX-313", vec![line(1, "Donation", "D", json!({}))]);
        dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
        donation_done.store(true, std::sync::atomic::Ordering::SeqCst);
        order
    };
    let ((spun, other_finished_first), other) = tokio::join!(spinning, other);
    assert_eq!(spun.lines[0].status, LineStatus::TimeoutError);
    assert_eq!(other.status, OrderStatus::Complete);
    assert!(other_finished_first, "the other order finished while the module was spinning");
}

#[tokio::test]
async fn a_memory_bomb_fails_inside_the_guest_at_its_memory_limit() {
    let runtime = runtime_limited("memory-bomb", "Seat", &[], &[("memory_bytes", "8388608")]).await;
    let order = survives(&runtime, "EDX-314").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::ServerError, LineStatus::ServerError]);
    let note = &notes_for(&order, 1)[0];
    assert!(note.starts_with("module misbehaving failed in fulfill-product: trap:"), "{note}");
    assert!(note.contains("after it reached its memory limit of 8 MiB (memory_bytes)"), "{note}");
    assert!(note.contains("memory allocation of"), "the guest's own last words are kept: {note}");
}

#[tokio::test]
async fn an_unreachable_instruction_is_a_server_error() {
    let runtime = runtime_with("unreachable", "Seat").await;
    let order = survives(&runtime, "EDX-315").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::ServerError, LineStatus::ServerError]);
    let note = &notes_for(&order, 1)[0];
    assert!(note.starts_with("module misbehaving failed in fulfill-product: trap: wasm trap: wasm `unreachable` instruction executed"), "{note}");
}

#[tokio::test]
async fn a_stack_overflow_is_a_server_error() {
    let runtime = runtime_with("stack-overflow", "Seat").await;
    let order = survives(&runtime, "EDX-316").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::ServerError, LineStatus::ServerError]);
    // The fixture keeps its frames' values in wasm locals, so it exhausts
    // wasmtime's stack. (A guest whose frames live on its shadow stack in
    // linear memory runs off the bottom of its memory instead: "out of
    // bounds memory access", also a Server Error.)
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving failed in fulfill-product: trap: wasm trap: call stack exhausted"]
    );
}

#[tokio::test]
async fn output_over_the_limit_is_not_used() {
    let runtime = runtime_limited("huge-output", "Seat", &[("output_bytes", "300000")], &[("output_bytes", "262144")]).await;
    let order = survives(&runtime, "EDX-317").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::ServerError, LineStatus::ServerError]);
    let note = &notes_for(&order, 1)[0];
    assert!(note.starts_with("module misbehaving failed in fulfill-product: returned 600"), "{note}");
    assert!(note.ends_with("bytes of output, over its limit of 262144 bytes (output_bytes); none of it is used"), "{note}");
    assert!(order.lines[0].attributes.is_empty(), "no attribute of the refused output is stored");
}

#[tokio::test]
async fn a_log_flood_is_cut_at_the_budget_and_the_lines_still_complete() {
    let runtime = runtime_limited("log-flood", "Seat", &[("log_messages", "20000")], &[("log_bytes", "4096")]).await;
    let order = survives(&runtime, "EDX-318").await;
    assert_eq!(order.status, OrderStatus::Complete);
}

#[tokio::test]
async fn a_module_that_sleeps_is_stopped_at_its_wall_time_limit() {
    let runtime = runtime_limited("sleep", "Seat", &[], &[("wall_ms", "300")]).await;
    let order = survives(&runtime, "EDX-319").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::TimeoutError, LineStatus::TimeoutError]);
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving failed in fulfill-product: exceeded its wall-time limit of 300 ms for one call (wall_ms)"]
    );
}

/// A loopback server that accepts connections and never answers.
async fn hanging_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn waiting_on_a_hanging_address_is_an_http_timeout_and_not_charged_as_cpu() {
    let (url, _server) = hanging_server().await;
    let limits = [("cpu_ms", "50"), ("http_timeout_ms", "300")];
    let runtime = runtime_calling("http-get", "Seat", &[&url], &[("url", &url)], &limits).await;
    let order = survives(&runtime, "EDX-320").await;
    // 300 ms waiting on HTTP (per line) against a 50 ms CPU budget: the
    // module still answers, with its own timeout note.
    assert_eq!(&statuses(&order)[..2], [LineStatus::TimeoutError, LineStatus::TimeoutError]);
    assert_eq!(notes_for(&order, 1), ["Fulfillment of order failed due to a request time out."]);
}

/// A loopback HTTP server that answers 200 to everything and counts.
async fn counting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "ok" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn http_calls_past_the_cap_are_refused() {
    let (url, count) = counting_server().await;
    let runtime = runtime_calling("http-flood", "Seat", &[&url], &[("url", &url)], &[("http_calls", "5")]).await;
    let order = dispatched(&runtime, "EDX-321").await;
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 5, "five calls reached the server");
    assert_eq!(&statuses(&order), &[LineStatus::ConfigurationError, LineStatus::ConfigurationError, LineStatus::Complete]);
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving: the host refused the request: module misbehaving used up its 5 HTTP calls for this order (http_calls)"]
    );
}

#[tokio::test]
async fn a_request_body_over_the_limit_is_not_sent() {
    let (url, count) = counting_server().await;
    let config = [("url", url.as_str()), ("body_bytes", "2048")];
    let runtime = runtime_calling("http-post-big", "Seat", &[&url], &config, &[("http_request_bytes", "1024")]).await;
    let order = survives(&runtime, "EDX-322").await;
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing was sent");
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving: invalid request: request body of 2048 bytes is over the module's limit of 1024 bytes (http_request_bytes)"]
    );
}

#[tokio::test]
async fn a_fuel_budget_stops_a_loop_deterministically() {
    let toml = with_limits(
        module_entry("misbehaving", "misbehaving", &[], &[("claim", "*"), ("behaviour", "loop")]),
        &[("fuel", "5000000")],
    );
    let settings = support::settings(&toml);
    let engine = fulfillment_host::runtime::ModuleEngine::for_settings(&settings).expect("engine");
    assert!(engine.meters_fuel());
    let runtime = Runtime::load_with(engine, &settings).await.expect("loads");
    let mut order = support::order("EDX-323", vec![line(1, "Seat", "S1", json!({}))]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.lines[0].status, LineStatus::TimeoutError);
    assert_eq!(
        notes_for(&order, 1),
        ["module misbehaving failed in fulfill-product: exceeded its fuel budget of 5000000 for one call (fuel)"]
    );
    // The shared test engine does not meter fuel: such a module is refused.
    let error = support::try_runtime(&toml).await.err().expect("refused");
    assert!(error.to_string().ends_with("sets limits.fuel, but this engine does not meter fuel"), "{error}");
}

#[tokio::test]
async fn an_order_waits_for_a_free_in_flight_slot_at_most_wall_ms() {
    let runtime = runtime_limited("complete", "*", &[], &[("max_in_flight", "1"), ("wall_ms", "200")]).await;
    let module = runtime.module("misbehaving").expect("loaded");
    let held = module.session("EDX-324").await.expect("the first order gets the slot");
    assert_eq!(module.in_flight(), 1);
    let waited = module.session("EDX-325").await.err().expect("no slot for the second order");
    assert_eq!(
        waited.to_string(),
        "module misbehaving failed in instantiate: found no free slot within 200 ms (wall_ms): it is already working on 1 orders (max_in_flight)"
    );
    // Dispatching while the slot is held: the lines wait, then time out.
    let order = dispatched(&runtime, "EDX-326").await;
    assert_eq!(&statuses(&order)[..2], [LineStatus::TimeoutError, LineStatus::TimeoutError]);
    drop(held);
    assert_eq!(module.in_flight(), 0);
    let order = dispatched(&runtime, "EDX-327").await;
    assert_eq!(order.status, OrderStatus::Complete);
}
