//! Transport failures are classified as the reference does (Python
//! `requests` raises `ConnectionError` for each): a connection refused,
//! reset or closed before the answer, an answer that is not HTTP, a TLS
//! failure or a DNS failure is `Fulfillment Network Error` with edX's
//! network note, and counts toward the circuit breaker.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, Order};
use fulfillment_host::runtime::Runtime;
use fulfillment_tests::broken_server::{Breakage, BrokenServer};

use crate::support::{self, module_entry, notes_for, seat};

const DEMO: &str = "course-v1:edX+DemoX+Demo";
const NETWORK_NOTE: &str = "Fulfillment of order failed due to a network problem.";

/// The enrollment module calling `lms_url` (a legacy API key: the servers
/// here never get as far as authentication), with a breaker that opens
/// after 2 failures.
async fn enrollment_calling(lms_url: &str) -> Runtime {
    let entry = module_entry("enrollment", "enrollment", &[lms_url], &[("lms_url", lms_url), ("api_key", "key")]);
    support::runtime(&format!("{entry}[modules.circuit_breaker]\nfailures = 2\ncool_down_ms = 3600000\n")).await
}

async fn one_seat(runtime: &Runtime, number: &str) -> Order {
    let mut order = support::order(number, vec![seat(1, DEMO, "verified")]);
    dispatch::fulfill_order(runtime, &mut order).await.expect("dispatch runs");
    order
}

/// Two orders against `url`: each line a network error with the network
/// note, and the circuit open after them.
async fn assert_network_failures_open_the_circuit(url: &str) {
    let runtime = enrollment_calling(url).await;
    for number in ["EDX-800", "EDX-801"] {
        let order = one_seat(&runtime, number).await;
        assert_eq!(order.lines[0].status, LineStatus::NetworkError, "{url}: {:?}", order.notes);
        assert_eq!(notes_for(&order, 1), [NETWORK_NOTE], "{url}");
    }
    let view = runtime.module("enrollment").expect("loaded").breaker().view();
    assert_eq!((view.state, view.consecutive_failures), ("open", 2), "{url}");
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_a_network_error() {
    let server = BrokenServer::start(Breakage::CloseBeforeAnswer).await.expect("server starts");
    assert_network_failures_open_the_circuit(&server.url()).await;
    assert!(server.connections() >= 2, "the requests reached the server");
}

#[tokio::test]
async fn a_reset_connection_is_a_network_error() {
    let server = BrokenServer::start(Breakage::Reset).await.expect("server starts");
    assert_network_failures_open_the_circuit(&server.url()).await;
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_a_network_error() {
    let server = BrokenServer::start(Breakage::Garbage).await.expect("server starts");
    assert_network_failures_open_the_circuit(&server.url()).await;
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error() {
    assert_network_failures_open_the_circuit(&support::closed_port_url()).await;
}

#[tokio::test]
async fn a_tls_failure_is_a_network_error() {
    // https to a server that does not speak TLS: the handshake fails.
    let server = BrokenServer::start(Breakage::PlainHttpAtOnce).await.expect("server starts");
    assert_network_failures_open_the_circuit(&server.url().replace("http://", "https://")).await;
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_network_error() {
    // `.invalid` never resolves (RFC 6761).
    assert_network_failures_open_the_circuit("http://lms.fulfillment-host.invalid").await;
}

#[tokio::test]
async fn a_body_cut_short_after_the_status_line_is_a_network_error() {
    let server = BrokenServer::start(Breakage::TruncatedBody).await.expect("server starts");
    assert_network_failures_open_the_circuit(&server.url()).await;
}
