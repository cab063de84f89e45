//! Fulfills `Seat` lines by enrolling the learner through the LMS Enrollment
//! API, as the reference's EnrollmentFulfillmentModule does.
//!
//! Config (settings.toml, `[modules.config]`): `lms_url` (required) and
//! `timeout_ms` (optional, below the host's `http_timeout_ms`). The LMS's API
//! key is the host's: `[modules.credentials."<lms>"]` with `kind = "header"`,
//! `header = "X-Edx-Api-Key"` (a legacy `api_key` in the config is still sent).

use fulfillment_guest::lms::{self, LmsConfig};
use fulfillment_guest::{
    FailureKind, Guest, JsonResponse, Line, LineOutcome, ModuleInfo, Order, Revocation,
    RevokeOutcome, attribute, claim_product_type, complete, fail_all, failed, failure,
    failure_for_http_error, http, module_info, send_json,
};
use serde_json::{Value, json};

const MODULE: &str = "enrollment";
const PRODUCT_TYPE: &str = "Seat";
/// The LMS's answer when a learner is enrolled in another mode than the one
/// being revoked: the seat is not this order's to take back, so the revocation
/// counts as done.
const MODE_MISMATCH: &str = "Enrollment mode mismatch";

struct Enrollment;

/// The Enrollment API of the LMS the config names.
struct Lms {
    enrollment_url: String,
    config: LmsConfig,
}

impl Lms {
    fn from_config() -> Result<Lms, fulfillment_guest::Failure> {
        let config = LmsConfig::from_config(MODULE)?;
        Ok(Lms {
            enrollment_url: format!("{}/api/enrollment/v1/enrollment", config.base_url),
            config,
        })
    }

    /// Posts an enrollment (or, with `is_active` false, a deactivation).
    fn post(&self, body: &Value, idempotency_key: &str) -> Result<JsonResponse, http::Error> {
        send_json(
            "POST",
            &self.enrollment_url,
            &self.config.headers(&[("Idempotency-Key", idempotency_key)]),
            Some(body),
            self.config.timeout_ms,
        )
    }
}

/// The enrollment mode for a product: its `certificate_type` (else its
/// `seat_type`, else `audit`); `professional` without ID verification is
/// `no-id-professional`.
fn mode(line: &Line) -> String {
    let attributes = &line.product.attributes;
    let mode = attribute(attributes, "certificate_type")
        .or_else(|| attribute(attributes, "seat_type"))
        .filter(|mode| !mode.is_empty())
        .unwrap_or("audit");
    let verified_id = attribute(attributes, "id_verification_required")
        .is_some_and(|flag| flag.eq_ignore_ascii_case("true") || flag == "1");
    if mode == "professional" && !verified_id {
        "no-id-professional".to_string()
    } else {
        mode.to_string()
    }
}

/// The request body of the Enrollment API for an enrollment.
fn enrollment_body(order: &Order, line: &Line, course_key: &str) -> Value {
    let mut attributes = vec![
        json!({"namespace": "order", "name": "order_number", "value": order.number}),
        json!({"namespace": "order", "name": "date_placed", "value": order.date_placed}),
    ];
    if let Some(provider) = attribute(&line.product.attributes, "credit_provider") {
        attributes.push(json!({"namespace": "credit", "name": "provider_id", "value": provider}));
    }
    json!({
        "user": order.user.username,
        "is_active": true,
        "mode": mode(line),
        "course_details": {"course_id": course_key},
        "enrollment_attributes": attributes,
    })
}

/// The request body of a deactivation: user, mode and course only, as edX
/// sends it (no enrollment attributes).
fn deactivation_body(order: &Order, line: &Line, course_key: &str) -> Value {
    json!({
        "user": order.user.username,
        "is_active": false,
        "mode": mode(line),
        "course_details": {"course_id": course_key},
    })
}

fn course_key(line: &Line) -> Option<&str> {
    attribute(&line.product.attributes, "course_key").filter(|key| !key.is_empty())
}

fn enroll(lms: &Lms, order: &Order, line: &Line) -> LineOutcome {
    let Some(course_key) = course_key(line) else {
        return failed(
            line,
            failure(
                FailureKind::Configuration,
                format!("product {} has no course_key attribute", line.product.sku),
            ),
        );
    };
    let body = enrollment_body(order, line, course_key);
    match lms.post(&body, &line.idempotency_key) {
        Ok(response) if response.status == 200 => complete(line, Vec::new()),
        Ok(response) => failed(
            line,
            lms::error_answer(&order.number, course_key, &response),
        ),
        Err(error) => failed(line, failure_for_http_error(MODULE, &error)),
    }
}

impl Guest for Enrollment {
    fn describe() -> ModuleInfo {
        module_info(MODULE, env!("CARGO_PKG_VERSION"), &[PRODUCT_TYPE])
    }

    fn supports_lines(_order: Order, lines: Vec<Line>) -> Vec<bool> {
        claim_product_type(&lines, PRODUCT_TYPE)
    }

    fn fulfill_product(order: Order, lines: Vec<Line>, _email_opt_in: bool) -> Vec<LineOutcome> {
        match Lms::from_config() {
            Ok(lms) => lines
                .iter()
                .map(|line| enroll(&lms, &order, line))
                .collect(),
            Err(why) => fail_all(&lines, &why),
        }
    }

    fn revoke_line(order: Order, line: Line, _revocation: Revocation) -> RevokeOutcome {
        let lms = match Lms::from_config() {
            Ok(lms) => lms,
            Err(why) => return RevokeOutcome::NotRevoked(why.message),
        };
        let Some(course_key) = course_key(&line) else {
            return RevokeOutcome::NotRevoked(format!(
                "product {} has no course_key attribute",
                line.product.sku
            ));
        };
        let body = deactivation_body(&order, &line, course_key);
        match lms.post(&body, &format!("{}-revoke", line.idempotency_key)) {
            Ok(response) if response.status == 200 => RevokeOutcome::Revoked(None),
            Ok(response) => {
                let message = response
                    .message()
                    .unwrap_or_else(|| lms::NO_DETAIL.to_string());
                if response.status == 400 && message.contains(MODE_MISMATCH) {
                    RevokeOutcome::Revoked(Some(format!(
                        "Skipped revoking {course_key}: {message}; the learner's enrollment is in another mode"
                    )))
                } else {
                    RevokeOutcome::NotRevoked(format!(
                        "the LMS answered {} for {course_key}: {message}",
                        response.status
                    ))
                }
            }
            Err(error) => RevokeOutcome::NotRevoked(failure_for_http_error(MODULE, &error).message),
        }
    }
}

fulfillment_guest::export_module!(Enrollment);
