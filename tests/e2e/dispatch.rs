//! The dispatch algorithm with the shipped modules.

use fulfillment_host::dispatch::{self, DispatchError};
use fulfillment_host::model::{LineStatus, OrderStatus};
use fulfillment_tests::lms::LmsStandIn;
use serde_json::json;

use crate::support::{self, line, module_entry, notes_for, order, seat};

const DEMO: &str = "course-v1:edX+DemoX+Demo";

#[tokio::test]
async fn mixed_product_types_each_go_to_their_module_and_complete() {
    let (lms, runtime) = support::shipped().await;
    let mut order = order(
        "EDX-1",
        vec![
            seat(1, DEMO, "verified"),
            line(2, "Coupon", "COUPON", json!({})),
            line(3, "Enrollment Code", "CODES", json!({"course_key": DEMO})),
            line(4, "Course Entitlement", "ENT", json!({"UUID": "c-uuid", "certificate_type": "verified"})),
            line(5, "Donation", "DONATION", json!({})),
        ],
    );
    let report = dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");

    assert_eq!(order.status, OrderStatus::Complete);
    let owners: Vec<_> = order.lines.iter().map(|line| line.fulfilled_by.as_deref()).collect();
    assert_eq!(
        owners,
        [Some("enrollment"), Some("coupon"), Some("enrollment-code"), Some("course-entitlement"), Some("donation")]
    );
    assert!(order.lines.iter().all(|line| line.status == LineStatus::Complete));
    assert_eq!(report.attempts.len(), 5);
    assert_eq!(lms.enrollment("alice", DEMO).map(|e| (e.mode, e.is_active)), Some(("verified".into(), true)));
    let uuid = order.lines[3].attributes.get("entitlement_uuid").expect("uuid stored on the line");
    assert_eq!(lms.entitlement(uuid).map(|e| e.course_uuid), Some("c-uuid".to_string()));
    assert!(order.notes.is_empty(), "no failure, no note: {:?}", order.notes);
}

#[tokio::test]
async fn a_line_no_module_claims_is_a_configuration_error_and_the_rest_completes() {
    let (_lms, runtime) = support::shipped().await;
    let mut order = order(
        "EDX-2",
        vec![line(1, "Donation", "DONATION", json!({})), line(2, "Book", "BOOK-1", json!({}))],
    );
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");

    assert_eq!(order.status, OrderStatus::FulfillmentError);
    assert_eq!(order.lines[0].status, LineStatus::Complete);
    assert_eq!(order.lines[1].status, LineStatus::ConfigurationError);
    assert_eq!(order.lines[1].fulfilled_by, None);
    assert_eq!(
        notes_for(&order, 2),
        ["No fulfillment module claimed line 2 (product type `Book`, sku BOOK-1); no module declares product type `Book`: considered enrollment (declares Seat), coupon (declares Coupon), enrollment-code (declares Enrollment Code), course-entitlement (declares Course Entitlement), donation (declares Donation)"]
    );
}

#[tokio::test]
async fn the_first_module_in_settings_order_wins_a_line_both_support() {
    let toml = [
        module_entry("first-donation", "donation", &[], &[]),
        module_entry("second-donation", "donation", &[], &[]),
    ]
    .join("\n");
    let runtime = support::runtime(&toml).await;
    let mut order = order("EDX-3", vec![line(1, "Donation", "D1", json!({})), line(2, "Donation", "D2", json!({}))]);
    let report = dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");

    assert!(order.lines.iter().all(|line| line.fulfilled_by.as_deref() == Some("first-donation")));
    let fulfill_calls: Vec<_> = report.calls.iter().filter(|call| call.call == "fulfill-product").collect();
    assert_eq!(fulfill_calls.len(), 1, "one fulfill-product call per claiming module: {fulfill_calls:?}");
    assert_eq!((fulfill_calls[0].module.as_str(), fulfill_calls[0].lines), ("first-donation", 2));
    assert!(
        !report.calls.iter().any(|call| call.module == "second-donation"),
        "a module is not asked when no line is left: {:?}",
        report.calls
    );

    let swapped = [
        module_entry("second-donation", "donation", &[], &[]),
        module_entry("first-donation", "donation", &[], &[]),
    ]
    .join("\n");
    let runtime = support::runtime(&swapped).await;
    let mut order = order_again();
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.lines[0].fulfilled_by.as_deref(), Some("second-donation"));

    fn order_again() -> fulfillment_host::model::Order {
        support::order("EDX-3b", vec![line(1, "Donation", "D1", json!({}))])
    }
}

#[tokio::test]
async fn a_module_failing_part_of_its_lines_fails_only_those() {
    let lms = LmsStandIn::start(support::API_KEY).await.expect("LMS starts");
    let toml = format!(
        "{}\n{}",
        module_entry("odd-failer", "misbehaving", &[], &[("claim", "Seat"), ("behaviour", "fail-odd")]),
        support::shipped_modules(&lms.url())
    );
    let runtime = support::runtime(&toml).await;
    let mut order = order(
        "EDX-4",
        vec![seat(1, DEMO, "audit"), seat(2, DEMO, "audit"), line(3, "Donation", "D", json!({}))],
    );
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");

    let statuses: Vec<_> = order.lines.iter().map(|line| (line.status, line.fulfilled_by.as_deref())).collect();
    assert_eq!(
        statuses,
        [
            (LineStatus::ServerError, Some("odd-failer")),
            (LineStatus::Complete, Some("odd-failer")),
            (LineStatus::Complete, Some("donation")),
        ]
    );
    assert_eq!(order.status, OrderStatus::FulfillmentError);
    assert_eq!(notes_for(&order, 1), ["line 1 is odd"]);
    assert!(lms.requests().is_empty(), "the enrollment module never saw the claimed seats");
}

#[tokio::test]
async fn a_retry_sends_only_the_lines_that_are_not_complete() {
    let (lms, runtime) = support::shipped().await;
    let broken = "course-v1:edX+Broken+2026";
    lms.fail_course(broken, 500, "Internal error");
    let mut order = order("EDX-5", vec![seat(1, DEMO, "verified"), seat(2, broken, "verified")]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("first dispatch runs");
    assert_eq!(order.status, OrderStatus::FulfillmentError);
    assert_eq!(order.lines[1].status, LineStatus::ServerError);
    assert_eq!(lms.requests().len(), 2);

    lms.heal();
    dispatch::fulfill_order(&runtime, &mut order).await.expect("retry runs");
    assert_eq!(order.status, OrderStatus::Complete);
    assert!(order.lines.iter().all(|line| line.status == LineStatus::Complete));
    let requests = lms.requests();
    assert_eq!(requests.len(), 3, "the retry sent only line 2");
    assert_eq!(requests[2].body["course_details"]["course_id"], broken);
    assert_eq!(lms.fulfillments_for_key("EDX-5-1"), 1, "line 1 was enrolled once");

    let again = dispatch::fulfill_order(&runtime, &mut order).await;
    assert_eq!(
        again.expect_err("a Complete order is not fulfillable"),
        DispatchError::NotFulfillable { number: "EDX-5".into(), status: OrderStatus::Complete }
    );
    assert_eq!(lms.requests().len(), 3, "nothing was sent for a Complete order");
}

#[tokio::test]
async fn dry_run_plans_without_fulfilling() {
    let (lms, runtime) = support::shipped().await;
    let order = order("EDX-6", vec![seat(1, DEMO, "verified"), line(2, "Book", "B", json!({}))]);
    let plan = dispatch::plan(&runtime, &order).await;
    let modules: Vec<_> = plan.iter().map(|claim| (claim.line_id, claim.module.as_deref())).collect();
    assert_eq!(modules, [(1, Some("enrollment")), (2, None)]);
    assert!(lms.requests().is_empty());
    assert_eq!(order.status, OrderStatus::Open);
}

#[tokio::test]
async fn revocation_goes_through_the_module_that_fulfilled_the_line() {
    let (lms, runtime) = support::shipped().await;
    let mut order = order("EDX-7", vec![seat(1, DEMO, "verified"), line(2, "Coupon", "C", json!({}))]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    let seat = dispatch::revoke_line(&runtime, &order, 1, 1).await.expect("revocation runs");
    assert_eq!(seat, fulfillment_host::runtime::RevokeResult::Revoked { note: None });
    assert_eq!(lms.enrollment("alice", DEMO).map(|e| e.is_active), Some(false));
    let coupon = dispatch::revoke_line(&runtime, &order, 2, 1).await.expect("revocation runs");
    assert!(matches!(coupon, fulfillment_host::runtime::RevokeResult::NotRevoked { .. }), "{coupon:?}");
}
