//! The circuit breaker: a module whose remote system keeps failing is not
//! called for a cool-down, its lines fail at once, and a probe closes the
//! circuit again.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, Order};
use fulfillment_host::runtime::Runtime;
use fulfillment_tests::lms::LmsStandIn;

use crate::support::{self, API_KEY, module_entry, notes_for, seat, with_limits};

const DEMO: &str = "course-v1:edX+DemoX+Demo_Course";

/// The enrollment module calling `lms`, with a 200 ms HTTP timeout and a
/// breaker that opens after `failures` and stays open `cool_down_ms`.
async fn enrollment_with_breaker(lms: &LmsStandIn, failures: u32, cool_down_ms: u64) -> Runtime {
    let url = lms.url();
    let entry = with_limits(
        module_entry("enrollment", "enrollment", &[&url], &[("lms_url", &url), ("api_key", API_KEY)]),
        &[("http_timeout_ms", "200")],
    );
    let toml = format!("{entry}[modules.circuit_breaker]\nfailures = {failures}\ncool_down_ms = {cool_down_ms}\n");
    support::runtime(&toml).await
}

async fn one_seat(runtime: &Runtime, number: &str) -> Order {
    let mut order = support::order(number, vec![seat(1, DEMO, "verified")]);
    dispatch::fulfill_order(runtime, &mut order).await.expect("dispatch runs");
    order
}

#[tokio::test]
async fn timeouts_in_a_row_open_the_circuit_and_lines_then_fail_without_a_call() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let runtime = enrollment_with_breaker(&lms, 2, 3_600_000).await;
    let module = runtime.module("enrollment").expect("loaded");
    lms.hang();
    for number in ["EDX-500", "EDX-501"] {
        assert_eq!(one_seat(&runtime, number).await.lines[0].status, LineStatus::TimeoutError);
    }
    assert_eq!(module.breaker().view().state, "open");
    assert_eq!(module.breaker().view().consecutive_failures, 2);

    lms.heal();
    let asked = lms.requests().len();
    let order = one_seat(&runtime, "EDX-502").await;
    assert_eq!(order.lines[0].status, LineStatus::NetworkError);
    let note = &notes_for(&order, 1)[0];
    assert!(
        note.starts_with("module enrollment was not called: its last 2 lines failed with network or timeout errors, so its circuit breaker is open (next probe in "),
        "{note}"
    );
    assert_eq!(lms.requests().len(), asked, "the LMS was not called");
}

#[tokio::test]
async fn after_the_cool_down_a_successful_probe_closes_the_circuit() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    // No cool-down: the call after the circuit opens is the probe.
    let runtime = enrollment_with_breaker(&lms, 1, 0).await;
    let module = runtime.module("enrollment").expect("loaded");
    lms.hang();
    assert_eq!(one_seat(&runtime, "EDX-510").await.lines[0].status, LineStatus::TimeoutError);
    assert_eq!(module.breaker().view().state, "open");
    // A probe that fails the same way opens it again.
    assert_eq!(one_seat(&runtime, "EDX-511").await.lines[0].status, LineStatus::TimeoutError);
    assert_eq!(module.breaker().view().state, "open");

    lms.heal();
    assert_eq!(one_seat(&runtime, "EDX-512").await.lines[0].status, LineStatus::Complete);
    let view = module.breaker().view();
    assert_eq!((view.state, view.consecutive_failures), ("closed", 0));
    assert!(lms.enrollment("alice", DEMO).is_some());
}

#[tokio::test]
async fn a_module_out_of_cpu_does_not_open_its_circuit() {
    // A loop is the module's own fault, not a sign that its LMS is down.
    let toml = with_limits(
        module_entry("misbehaving", "misbehaving", &[], &[("claim", "*"), ("behaviour", "loop")]),
        &[("cpu_ms", "20")],
    );
    let runtime = support::runtime(&format!("{toml}[modules.circuit_breaker]\nfailures = 1\ncool_down_ms = 3600000\n")).await;
    for number in ["EDX-520", "EDX-521"] {
        assert_eq!(one_seat(&runtime, number).await.lines[0].status, LineStatus::TimeoutError);
    }
    let view = runtime.module("misbehaving").expect("loaded").breaker().view();
    assert_eq!((view.state, view.consecutive_failures), ("closed", 0));
}
