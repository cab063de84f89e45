//! Fulfills `Course Entitlement` lines through the LMS Entitlements API and
//! stores the returned entitlement uuid on the line, as the reference's
//! CourseEntitlementFulfillmentModule does. Executive-education entitlements
//! (`certificate_type` paid- or unpaid-executive-education) are left to a
//! module of their own.
//!
//! Config: `lms_url` (required) and `timeout_ms` (optional), as
//! [`fulfillment_guest::lms::LmsConfig`] reads them. The Entitlements API
//! takes a JWT only: the host gets one for the module with
//! `[modules.credentials."<lms>"] kind = "oauth2-client-credentials"`
//! (`token_type = "jwt"`), as edX ecommerce does.
//!
//! Unlike upstream, every call has a timeout (the host's, or `timeout_ms`),
//! and a line whose entitlement the LMS created but whose answer was lost is
//! found again on the retry: the LMS refuses a second entitlement for the
//! same course and order (400), so the module then looks the entitlement up
//! (`GET ...?user=`) and completes the line with it.

use fulfillment_guest::lms::{self, LmsConfig};
use fulfillment_guest::{
    Completion, Failure, FailureKind, Guest, Line, LineOutcome, ModuleInfo, Order, Outcome,
    Revocation, RevokeOutcome, attr, attribute, complete, fail_all, failed, failure,
    failure_for_http_error, http, module_info, send_json,
};
use serde_json::json;

const MODULE: &str = "course-entitlement";
const PRODUCT_TYPE: &str = "Course Entitlement";
const EXECUTIVE_EDUCATION: [&str; 2] = ["paid-executive-education", "unpaid-executive-education"];
/// The line attribute that keeps the LMS's uuid for the entitlement.
const ENTITLEMENT_UUID: &str = "entitlement_uuid";
/// The most pages of a learner's entitlements read when looking one up (the
/// LMS pages 100 at most).
const LOOKUP_PAGES: u32 = 10;

struct CourseEntitlement;

/// The Entitlements API of the LMS the config names.
struct Lms {
    entitlements_url: String,
    config: LmsConfig,
}

impl Lms {
    fn from_config() -> Result<Lms, fulfillment_guest::Failure> {
        let config = LmsConfig::from_config(MODULE)?;
        Ok(Lms {
            entitlements_url: format!("{}/api/entitlements/v1/entitlements/", config.base_url),
            config,
        })
    }
}

/// The reference maps both a failed connection and a time-out of the
/// entitlements API to a network error; the message keeps which it was.
fn transport_failure(error: &http::Error) -> fulfillment_guest::Failure {
    let mapped = failure_for_http_error(MODULE, error);
    match mapped.kind {
        FailureKind::Timeout => failure(FailureKind::Network, mapped.message),
        _ => mapped,
    }
}

fn entitle(lms: &Lms, order: &Order, line: &Line, email_opt_in: bool) -> LineOutcome {
    let Some(course_uuid) =
        attribute(&line.product.attributes, "UUID").filter(|uuid| !uuid.is_empty())
    else {
        return failed(
            line,
            failure(
                FailureKind::Configuration,
                format!("product {} has no UUID attribute", line.product.sku),
            ),
        );
    };
    let body = json!({
        "user": order.user.username,
        "course_uuid": course_uuid,
        "mode": attribute(&line.product.attributes, "certificate_type").unwrap_or(""),
        "order_number": order.number,
        "email_opt_in": email_opt_in,
    });
    let headers = lms
        .config
        .headers(&[("Idempotency-Key", line.idempotency_key.as_str())]);
    match send_json(
        "POST",
        &lms.entitlements_url,
        &headers,
        Some(&body),
        lms.config.timeout_ms,
    ) {
        Ok(response) if response.status == 200 || response.status == 201 => {
            let uuid = response.json().and_then(|json| {
                json.get("uuid")
                    .and_then(|uuid| uuid.as_str())
                    .map(str::to_string)
            });
            match uuid {
                Some(uuid) => complete(line, vec![attr(ENTITLEMENT_UUID, uuid)]),
                None => failed(
                    line,
                    failure(
                        FailureKind::Server,
                        "the LMS created the entitlement but answered without its uuid",
                    ),
                ),
            }
        }
        // One per course and order: created by an attempt whose answer was
        // lost, or refused for another reason.
        Ok(response) if response.status == 400 => match find_entitlement(lms, order, course_uuid) {
            Ok(Some(uuid)) => LineOutcome {
                line_id: line.id,
                outcome: Outcome::Complete(Completion {
                    attributes: vec![attr(ENTITLEMENT_UUID, uuid.clone())],
                    note: Some(format!(
                        "The LMS already had entitlement {uuid} for course {course_uuid} and order {}; the line uses it",
                        order.number
                    )),
                }),
            },
            Ok(None) => failed(
                line,
                lms::error_answer(&order.number, &format!("course {course_uuid}"), &response),
            ),
            Err(why) => {
                let refused =
                    lms::error_answer(&order.number, &format!("course {course_uuid}"), &response);
                failed(
                    line,
                    failure(
                        why.kind,
                        format!(
                            "{}; looking for an existing entitlement: {}",
                            refused.message, why.message
                        ),
                    ),
                )
            }
        },
        Ok(response) => failed(
            line,
            lms::error_answer(&order.number, &format!("course {course_uuid}"), &response),
        ),
        Err(error) => failed(line, transport_failure(&error)),
    }
}

/// The uuid of the learner's active entitlement to `course_uuid` from
/// `order`, if the LMS has one. A revoked one is an error: the LMS will not
/// create another, and staff must decide.
fn find_entitlement(
    lms: &Lms,
    order: &Order,
    course_uuid: &str,
) -> Result<Option<String>, Failure> {
    let headers = lms.config.headers(&[]);
    for page in 1..=LOOKUP_PAGES {
        let url = format!(
            "{}?user={}&page={page}&page_size=100",
            lms.entitlements_url,
            percent_encode(&order.user.username)
        );
        let response = send_json("GET", &url, &headers, None, lms.config.timeout_ms)
            .map_err(|error| transport_failure(&error))?;
        if response.status != 200 {
            return Err(lms::error_answer(
                &order.number,
                &format!("the entitlements of {}", order.user.username),
                &response,
            ));
        }
        let json = response.json().unwrap_or_default();
        let results = json
            .get("results")
            .and_then(|results| results.as_array())
            .cloned()
            .unwrap_or_default();
        let found = results.iter().find(|entitlement| {
            entitlement
                .get("course_uuid")
                .and_then(|uuid| uuid.as_str())
                == Some(course_uuid)
                && entitlement
                    .get("order_number")
                    .and_then(|number| number.as_str())
                    == Some(order.number.as_str())
        });
        if let Some(entitlement) = found {
            let Some(uuid) = entitlement
                .get("uuid")
                .and_then(|uuid| uuid.as_str())
                .filter(|uuid| !uuid.is_empty())
            else {
                return Err(failure(
                    FailureKind::Server,
                    "the LMS listed the entitlement without its uuid",
                ));
            };
            let uuid = uuid.to_string();
            if entitlement
                .get("expired_at")
                .is_some_and(|expired| !expired.is_null())
            {
                return Err(failure(
                    FailureKind::Server,
                    format!(
                        "Fulfillment of order {} failed: the LMS holds entitlement {uuid} for course {course_uuid} and this order, but it was revoked",
                        order.number
                    ),
                ));
            }
            return Ok(Some(uuid));
        }
        if json.get("next").is_none_or(|next| next.is_null()) {
            break;
        }
    }
    Ok(None)
}

/// `text` for a URL query value: unreserved characters as they are, the
/// rest as %XX.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Guest for CourseEntitlement {
    fn describe() -> ModuleInfo {
        module_info(MODULE, env!("CARGO_PKG_VERSION"), &[PRODUCT_TYPE])
    }

    fn supports_lines(_order: Order, lines: Vec<Line>) -> Vec<bool> {
        lines
            .iter()
            .map(|line| {
                let certificate_type =
                    attribute(&line.product.attributes, "certificate_type").unwrap_or("");
                line.product.product_type == PRODUCT_TYPE
                    && !EXECUTIVE_EDUCATION.contains(&certificate_type)
            })
            .collect()
    }

    fn fulfill_product(order: Order, lines: Vec<Line>, email_opt_in: bool) -> Vec<LineOutcome> {
        match Lms::from_config() {
            Ok(lms) => lines
                .iter()
                .map(|line| entitle(&lms, &order, line, email_opt_in))
                .collect(),
            Err(why) => fail_all(&lines, &why),
        }
    }

    fn revoke_line(_order: Order, line: Line, _revocation: Revocation) -> RevokeOutcome {
        let lms = match Lms::from_config() {
            Ok(lms) => lms,
            Err(why) => return RevokeOutcome::NotRevoked(why.message),
        };
        let Some(uuid) = attribute(&line.stored_attributes, ENTITLEMENT_UUID) else {
            return RevokeOutcome::NotRevoked(format!(
                "line {} has no {ENTITLEMENT_UUID}",
                line.id
            ));
        };
        let url = format!("{}{uuid}/", lms.entitlements_url);
        match send_json(
            "DELETE",
            &url,
            &lms.config.headers(&[]),
            None,
            lms.config.timeout_ms,
        ) {
            Ok(response) if response.status == 204 || response.status == 200 => {
                RevokeOutcome::Revoked(None)
            }
            Ok(response) => RevokeOutcome::NotRevoked(format!(
                "the LMS answered {} for entitlement {uuid}: {}",
                response.status,
                response
                    .message()
                    .unwrap_or_else(|| lms::NO_DETAIL.to_string())
            )),
            Err(error) => RevokeOutcome::NotRevoked(transport_failure(&error).message),
        }
    }
}

fulfillment_guest::export_module!(CourseEntitlement);
