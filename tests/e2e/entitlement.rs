//! The course-entitlement module against the LMS Entitlements API.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, OrderStatus};
use fulfillment_host::runtime::RevokeResult;
use serde_json::json;

use crate::support::{self, line, notes_for, order};

fn entitlement(id: u64, certificate_type: &str) -> serde_json::Value {
    line(
        id,
        "Course Entitlement",
        &format!("ENT-{id}"),
        json!({"UUID": format!("course-{id}"), "certificate_type": certificate_type}),
    )
}

#[tokio::test]
async fn creates_the_entitlement_stores_its_uuid_and_revokes_it() {
    let (lms, runtime) = support::shipped().await;
    let mut order = order("EDX-200", vec![entitlement(1, "verified")]);
    order.email_opt_in = true;
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.status, OrderStatus::Complete);
    let request = lms.requests().pop().expect("a request");
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/api/entitlements/v1/entitlements/"));
    assert_eq!(
        request.body,
        json!({"user": "alice", "course_uuid": "course-1", "mode": "verified", "order_number": "EDX-200", "email_opt_in": true})
    );
    let uuid = order.lines[0].attributes["entitlement_uuid"].clone();
    assert_eq!(lms.entitlement(&uuid).map(|e| e.revoked), Some(false));

    let revoked = dispatch::revoke_line(&runtime, &order, 1, 1).await.expect("revoke runs");
    assert_eq!(revoked, RevokeResult::Revoked { note: None });
    let request = lms.requests().pop().expect("a request");
    assert_eq!(request.method, "DELETE");
    assert_eq!(request.path, format!("/api/entitlements/v1/entitlements/{uuid}/"));
    assert_eq!(lms.entitlement(&uuid).map(|e| e.revoked), Some(true));
}

#[tokio::test]
async fn a_line_sent_again_finds_its_entitlement_and_another_refusal_is_a_server_error() {
    let (lms, runtime) = support::shipped().await;
    let mut first = order("EDX-201", vec![entitlement(1, "verified")]);
    dispatch::fulfill_order(&runtime, &mut first).await.expect("dispatch runs");
    let uuid = first.lines[0].attributes.get("entitlement_uuid").cloned();

    // The same line again (its answer was lost, say): the LMS refuses a
    // second entitlement for the course and order, and the module finds
    // the one it has.
    let mut retried = order("EDX-201", vec![entitlement(1, "verified")]);
    dispatch::fulfill_order(&runtime, &mut retried).await.expect("dispatch runs");
    assert_eq!(retried.lines[0].status, LineStatus::Complete);
    assert_eq!(retried.lines[0].attributes.get("entitlement_uuid").cloned(), uuid);
    assert_eq!(lms.fulfillments_for_key("EDX-201-1"), 1);

    // A refusal for another reason (an unknown learner) is a server error
    // with the LMS's field error.
    lms.forget_user("alice");
    let mut unknown = order("EDX-206", vec![entitlement(1, "verified")]);
    dispatch::fulfill_order(&runtime, &mut unknown).await.expect("dispatch runs");
    assert_eq!(unknown.lines[0].status, LineStatus::ServerError);
    assert!(notes_for(&unknown, 1)[0].contains("answered 400"), "{:?}", unknown.notes);
}

#[tokio::test]
async fn an_unreachable_lms_is_a_network_error_as_upstream() {
    let lms_url = support::closed_port_url();
    let runtime = support::runtime(&support::shipped_modules(&lms_url)).await;
    let mut order = order("EDX-202", vec![entitlement(1, "verified")]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.lines[0].status, LineStatus::NetworkError);
}

#[tokio::test]
async fn executive_education_entitlements_are_not_claimed() {
    let (lms, runtime) = support::shipped().await;
    let mut order = order("EDX-203", vec![entitlement(1, "paid-executive-education")]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    assert!(lms.requests().is_empty());
}

#[tokio::test]
async fn enrollment_codes_are_one_per_seat_bought_and_stable_across_retries() {
    let (_lms, runtime) = support::shipped().await;
    let codes = line(1, "Enrollment Code", "CODES", json!({"course_key": "course-v1:edX+DemoX+Demo"}));
    let mut codes = codes;
    codes["quantity"] = json!(3);
    let mut first = order("EDX-204", vec![codes.clone()]);
    dispatch::fulfill_order(&runtime, &mut first).await.expect("dispatch runs");
    let issued: Vec<String> = first.lines[0].attributes["voucher_codes"].split(',').map(str::to_string).collect();
    assert_eq!(issued.len(), 3);
    assert!(issued.iter().all(|code| code.len() == 16));
    assert_ne!(issued[0], issued[1]);

    let mut same_line_again = order("EDX-204", vec![codes.clone()]);
    dispatch::fulfill_order(&runtime, &mut same_line_again).await.expect("dispatch runs");
    assert_eq!(same_line_again.lines[0].attributes["voucher_codes"], issued.join(","));

    let mut other_order = order("EDX-205", vec![codes]);
    dispatch::fulfill_order(&runtime, &mut other_order).await.expect("dispatch runs");
    assert_ne!(other_order.lines[0].attributes["voucher_codes"], issued.join(","));
}
