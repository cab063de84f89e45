//! Lanes: a line is offered only to the modules that declared its product
//! type in `describe` (or the wildcard `"*"`), so a module that claims
//! everything cannot take, and fail, the lines of other modules.

use fulfillment_host::dispatch;
use fulfillment_host::model::{LineStatus, OrderStatus};
use fulfillment_tests::lms::LmsStandIn;
use serde_json::json;

use crate::harness::{ADMIN_TOKEN, Db, TestApp};
use crate::support::{self, API_KEY, line, module_entry, notes_for, seat};

const DEMO: &str = "course-v1:edX+DemoX+Demo";

#[tokio::test]
async fn a_module_listed_first_that_claims_every_line_and_traps_fails_only_its_declared_lane() {
    let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
    let lms_url = lms.url();
    let toml = [
        // Declares Coupon, claims every line it is offered, traps in fulfill.
        module_entry(
            "hostile",
            "misbehaving",
            &[],
            &[("declare", "Coupon"), ("claim", "*"), ("behaviour", "trap-in-fulfill")],
        ),
        module_entry("enrollment", "enrollment", &[&lms_url], &[("lms_url", &lms_url), ("api_key", API_KEY)]),
        module_entry("donation", "donation", &[], &[]),
    ]
    .join("\n");
    let runtime = support::runtime(&toml).await;
    let mut order = support::order(
        "EDX-700",
        vec![seat(1, DEMO, "verified"), line(2, "Donation", "D", json!({})), line(3, "Coupon", "C", json!({}))],
    );
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    let outcome: Vec<_> = order.lines.iter().map(|line| (line.status, line.fulfilled_by.as_deref())).collect();
    assert_eq!(
        outcome,
        [
            (LineStatus::Complete, Some("enrollment")),
            (LineStatus::Complete, Some("donation")),
            (LineStatus::ServerError, Some("hostile")),
        ],
        "notes: {:?}",
        order.notes
    );
    assert_eq!(lms.enrollment("alice", DEMO).map(|enrollment| enrollment.is_active), Some(true));
}

#[tokio::test]
async fn a_line_whose_product_type_no_module_declares_names_the_modules_and_their_lanes() {
    let toml = [
        module_entry("donation", "donation", &[], &[]),
        module_entry("coupon", "coupon", &[], &[]),
    ]
    .join("\n");
    let runtime = support::runtime(&toml).await;
    let mut order = support::order("EDX-701", vec![line(1, "Book", "BOOK-1", json!({}))]);
    let report = dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.lines[0].status, LineStatus::ConfigurationError);
    assert_eq!(
        notes_for(&order, 1),
        ["No fulfillment module claimed line 1 (product type `Book`, sku BOOK-1); no module declares product type `Book`: considered donation (declares Donation), coupon (declares Coupon)"]
    );
    assert!(report.calls.is_empty(), "no module is asked about a line outside its lane: {:?}", report.calls);
}

#[tokio::test]
async fn a_module_faulting_outside_the_lines_lane_leaves_it_a_configuration_error() {
    let toml = [
        module_entry("seats", "misbehaving", &[], &[("claim", "Seat"), ("behaviour", "trap-in-supports")]),
        module_entry("donation", "donation", &[], &[]),
    ]
    .join("\n");
    let runtime = support::runtime(&toml).await;
    let mut order = support::order("EDX-702", vec![line(1, "Seat", "S1", json!({})), line(2, "Book", "B", json!({}))]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    // The seat may have been the trapping module's: retryable. The book was
    // never its business.
    assert_eq!(order.lines[0].status, LineStatus::ServerError);
    assert_eq!(order.lines[1].status, LineStatus::ConfigurationError, "{:?}", notes_for(&order, 2));
}

#[tokio::test]
async fn a_wildcard_module_is_offered_every_line() {
    let toml = module_entry("anything", "misbehaving", &[], &[("claim", "*"), ("behaviour", "complete")]);
    let runtime = support::runtime(&toml).await;
    let mut order = support::order("EDX-703", vec![line(1, "Book", "B", json!({})), line(2, "Gift Card", "G", json!({}))]);
    dispatch::fulfill_order(&runtime, &mut order).await.expect("dispatch runs");
    assert_eq!(order.status, OrderStatus::Complete);
}

/// Each shipped module claims exactly the product types it declares: were it
/// to claim more, lanes would hide those lines from it; were it to declare
/// more, it would be offered lines it never takes.
#[tokio::test]
async fn the_shipped_modules_declare_exactly_what_they_claim() {
    let (_lms, runtime) = support::shipped().await;
    let types = ["Seat", "Coupon", "Enrollment Code", "Course Entitlement", "Donation", "Book"];
    let lines: Vec<_> = types
        .iter()
        .enumerate()
        .map(|(index, product_type)| {
            line(index as u64 + 1, product_type, &format!("SKU-{index}"), json!({"course_key": DEMO, "certificate_type": "verified", "UUID": "c"}))
        })
        .collect();
    let order = support::order("EDX-704", lines);
    for module in runtime.modules() {
        let declared = &module.info().product_types;
        assert_eq!(declared.len(), 1, "{} declares one product type: {declared:?}", module.name());
        let mut session = module.session(&order.number).await.expect("a session");
        let lines: Vec<_> = order.lines.iter().collect();
        let answers = session.supports_lines(&order, &lines).await.expect("supports-lines answers");
        assert_eq!(answers.len(), lines.len(), "{}: one answer per line", module.name());
        for (line, claims) in order.lines.iter().zip(answers) {
            assert_eq!(
                claims,
                declared.contains(&line.product.product_type),
                "{} declares {declared:?}; claims a {} line: {claims}",
                module.name(),
                line.product.product_type
            );
        }
    }
}

#[tokio::test]
async fn get_modules_shows_the_lanes_and_marks_a_wildcard_module() {
    let extra = module_entry("anything", "misbehaving", &[], &[("claim", "*")]);
    let app = TestApp::spawn_with(Db::Sqlite, &extra).await;
    let (_, modules) = app.get("/modules", ADMIN_TOKEN).await;
    let modules = modules.as_array().expect("a list");
    let view = |name: &str| modules.iter().find(|module| module["name"] == name).cloned().unwrap_or_default();
    assert_eq!(view("donation")["product_types"], json!(["Donation"]));
    assert_eq!(view("donation")["wildcard"], false);
    assert_eq!(view("anything")["product_types"], json!(["*"]));
    assert_eq!(view("anything")["wildcard"], true);
}
