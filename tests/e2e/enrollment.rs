//! The enrollment module against the LMS stand-in: the Enrollment API
//! contract and each status of the reference's mapping.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, Order, OrderStatus};
use fulfillment_host::runtime::{RevokeResult, Runtime};
use fulfillment_tests::lms::{LmsApi, LmsStandIn};
use serde_json::json;

use crate::support::{self, API_KEY, closed_port_url, line, module_entry, notes_for, order, seat};

const DEMO: &str = "course-v1:edX+DemoX+Demo";

/// A runtime with only the enrollment module, calling `lms_url`, allowed to
/// call `allowed`, with `extra` config. The host holds the LMS's API key
/// (when `lms_url` is allowed) unless `extra` gives the module a legacy
/// `api_key`.
async fn enrollment_runtime(lms_url: &str, allowed: &[&str], extra: &[(&str, &str)], http_timeout_ms: Option<u32>) -> Runtime {
    let mut config = vec![("lms_url", lms_url)];
    config.extend_from_slice(extra);
    let mut toml = module_entry("enrollment", "enrollment", allowed, &config);
    if allowed.contains(&lms_url) && !extra.iter().any(|(key, _)| *key == "api_key") {
        toml = support::with_credentials(toml, lms_url, LmsApi::Enrollment);
    }
    if let Some(ms) = http_timeout_ms {
        toml = support::with_limits(toml, &[("http_timeout_ms", &ms.to_string())]);
    }
    support::runtime(&toml).await
}

async fn fulfill_one_seat(runtime: &Runtime, number: &str) -> Order {
    let mut order = order(number, vec![seat(1, DEMO, "verified")]);
    dispatch::fulfill_order(runtime, &mut order).await.expect("dispatch runs");
    order
}

#[tokio::test]
async fn sends_the_enrollment_api_request_of_the_contract() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = enrollment_runtime(&lms.url(), &[&lms.url()], &[], None).await;
    let credit = line(
        2,
        "Seat",
        "CREDIT",
        json!({"course_key": "course-v1:edX+Credit+1", "certificate_type": "credit", "credit_provider": "asu"}),
    );
    let professional = line(3, "Seat", "PRO", json!({"course_key": "course-v1:edX+Pro+1", "certificate_type": "professional"}));
    let no_mode = line(4, "Seat", "AUDIT", json!({"course_key": "course-v1:edX+Audit+1"}));
    let mut order = order("EDX-100", vec![seat(1, DEMO, "verified"), credit, professional, no_mode]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.status, OrderStatus::Complete);

    let requests = lms.requests();
    assert_eq!(requests.len(), 4);
    let first = &requests[0];
    assert_eq!((first.method.as_str(), first.path.as_str()), ("POST", "/api/enrollment/v1/enrollment"));
    assert_eq!(first.api_key.as_deref(), Some(API_KEY));
    assert_eq!(first.idempotency_key.as_deref(), Some("EDX-100-1"));
    assert_eq!(
        first.body,
        json!({
            "user": "alice",
            "is_active": true,
            "mode": "verified",
            "course_details": {"course_id": DEMO},
            "enrollment_attributes": [
                {"namespace": "order", "name": "order_number", "value": "EDX-100"},
                {"namespace": "order", "name": "date_placed", "value": "2026-11-29T12:00:00Z"},
            ],
        })
    );
    assert_eq!(
        requests[1].body["enrollment_attributes"][2],
        json!({"namespace": "credit", "name": "provider_id", "value": "asu"})
    );
    assert_eq!(requests[2].body["mode"], "no-id-professional");
    assert_eq!(requests[3].body["mode"], "audit");
}

#[tokio::test]
async fn an_lms_error_answer_is_a_server_error_with_the_lms_message() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = enrollment_runtime(&lms.url(), &[&lms.url()], &[], None).await;
    lms.fail_all(503, "Service unavailable for maintenance");
    let order = fulfill_one_seat(&runtime, "EDX-101").await;
    assert_eq!(order.lines[0].status, LineStatus::ServerError);
    assert_eq!(order.status, OrderStatus::FulfillmentError);
    assert_eq!(
        notes_for(&order, 1),
        [format!("Fulfillment of order EDX-101 failed: the LMS answered 503 for {DEMO}: Service unavailable for maintenance")]
    );

    lms.heal();
    lms.forget_user("alice");
    let order = fulfill_one_seat(&runtime, "EDX-102").await;
    assert_eq!(order.lines[0].status, LineStatus::ServerError);
    assert!(notes_for(&order, 1)[0].ends_with("answered 406 for course-v1:edX+DemoX+Demo: The user alice does not exist."));

    let mut order = support::order("EDX-103", vec![line(1, "Seat", "BAD", json!({"course_key": "not-a-course"}))]);
    lms.heal();
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert!(notes_for(&order, 1)[0].contains("answered 400"), "{:?}", order.notes);
}

#[tokio::test]
async fn an_error_without_a_message_says_no_detail_provided() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    // An empty message makes the stand-in answer with an empty body.
    lms.fail_all(500, "");
    let runtime = enrollment_runtime(&lms.url(), &[&lms.url()], &[], None).await;
    let order = fulfill_one_seat(&runtime, "EDX-104").await;
    assert_eq!(order.lines[0].status, LineStatus::ServerError);
    assert_eq!(
        notes_for(&order, 1),
        [format!("Fulfillment of order EDX-104 failed: the LMS answered 500 for {DEMO}: (No detail provided.)")]
    );
}

#[tokio::test]
async fn a_closed_port_is_a_network_error() {
    let url = closed_port_url();
    let runtime = enrollment_runtime(&url, &[&url], &[], None).await;
    let order = fulfill_one_seat(&runtime, "EDX-105").await;
    assert_eq!(order.lines[0].status, LineStatus::NetworkError);
    assert_eq!(notes_for(&order, 1), ["Fulfillment of order failed due to a network problem."]);
}

#[tokio::test]
async fn an_lms_that_does_not_answer_in_time_is_a_timeout_error() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    lms.hang();
    let runtime = enrollment_runtime(&lms.url(), &[&lms.url()], &[], Some(300)).await;
    let order = fulfill_one_seat(&runtime, "EDX-106").await;
    assert_eq!(order.lines[0].status, LineStatus::TimeoutError);
    assert_eq!(notes_for(&order, 1), ["Fulfillment of order failed due to a request time out."]);
}

#[tokio::test]
async fn without_credentials_the_lms_answers_401_a_configuration_error_with_its_detail() {
    // The reference: no API key configured -> Fulfillment Configuration Error.
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = enrollment_runtime(&lms.url(), &[&lms.url()], &[("api_key", "")], None).await;
    let order = fulfill_one_seat(&runtime, "EDX-107").await;
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    assert_eq!(
        notes_for(&order, 1),
        [format!(
            "Fulfillment of order EDX-107 failed: the LMS answered 401 for {DEMO}: Authentication credentials were not provided. \
             (give the host the LMS's credentials in [modules.credentials])"
        )]
    );
    let request = lms.requests().pop().expect("sent");
    assert_eq!((request.api_key, request.authorization, request.status), (None, None, 401));
}

#[tokio::test]
async fn a_legacy_api_key_in_the_module_config_still_works() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = enrollment_runtime(&lms.url(), &[&lms.url()], &[("api_key", API_KEY)], None).await;
    assert_eq!(fulfill_one_seat(&runtime, "EDX-117").await.status, OrderStatus::Complete);
    assert_eq!(lms.requests()[0].api_key.as_deref(), Some(API_KEY));
}

#[tokio::test]
async fn no_course_key_is_a_configuration_error() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = enrollment_runtime(&lms.url(), &[&lms.url()], &[], None).await;
    let mut order = support::order("EDX-108", vec![line(1, "Seat", "NOKEY", json!({}))]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    assert_eq!(notes_for(&order, 1), ["product NOKEY has no course_key attribute"]);
    assert!(lms.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_destination_outside_allowed_hosts_is_refused_and_nothing_is_sent() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let elsewhere = closed_port_url();
    let runtime = enrollment_runtime(&lms.url(), &[&elsewhere], &[], None).await;
    let order = fulfill_one_seat(&runtime, "EDX-109").await;
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    assert_eq!(
        notes_for(&order, 1),
        [format!(
            "module enrollment: the host refused the request: {} is not in allowed_hosts of module enrollment",
            lms.url()
        )]
    );
    assert!(lms.requests().is_empty(), "the LMS saw nothing");

    let no_http = enrollment_runtime(&lms.url(), &[], &[], None).await;
    let order = fulfill_one_seat(&no_http, "EDX-110").await;
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    assert!(lms.requests().is_empty());
}

#[tokio::test]
async fn revoking_deactivates_and_a_mode_mismatch_counts_as_revoked() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS starts");
    let runtime = enrollment_runtime(&lms.url(), &[&lms.url()], &[], None).await;
    let order = fulfill_one_seat(&runtime, "EDX-111").await;
    assert_eq!(order.status, OrderStatus::Complete);

    let revoked = dispatch::revoke_line(&runtime, &order, 1, 1).await.expect("revoke runs");
    assert_eq!(revoked, RevokeResult::Revoked { note: None });
    let last = lms.requests().pop().expect("a request");
    // What edX sends to deactivate: no enrollment_attributes.
    assert_eq!(
        last.body,
        json!({"user": "alice", "is_active": false, "mode": "verified", "course_details": {"course_id": DEMO}})
    );
    assert_eq!(last.api_key.as_deref(), Some(API_KEY), "the host's API key on the revocation too");
    assert_eq!(lms.enrollment("alice", DEMO).map(|e| e.is_active), Some(false));

    // Another order's seat, after which the learner enrolled in another
    // mode: not that order's seat to take away.
    let verified = fulfill_one_seat(&runtime, "EDX-113").await;
    let mut audit = support::order("EDX-112", vec![seat(1, DEMO, "audit")]);
    dispatch::fulfill_order(&runtime, &mut audit).await.expect("dispatch runs");
    let mismatch = dispatch::revoke_line(&runtime, &verified, 1, 1).await.expect("revoke runs");
    match mismatch {
        RevokeResult::Revoked { note: Some(note) } => assert!(note.contains("Enrollment mode mismatch"), "{note}"),
        other => panic!("expected revoked with a note, got {other:?}"),
    }
    assert_eq!(lms.enrollment("alice", DEMO).map(|e| (e.mode, e.is_active)), Some(("audit".into(), true)));

    lms.fail_all(500, "down");
    let failed = dispatch::revoke_line(&runtime, &order, 1, 1).await.expect("revoke runs");
    assert_eq!(failed, RevokeResult::NotRevoked { reason: format!("the LMS answered 500 for {DEMO}: down") });
}
