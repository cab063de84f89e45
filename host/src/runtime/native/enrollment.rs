//! plugins/enrollment as plain Rust: enrolls the learner of each `Seat` line
//! through the LMS Enrollment API, over the host's HTTP (its allowed hosts,
//! credentials and time-outs), with the module's request and its mapping of
//! answers to line statuses.

use serde_json::{Value, json};

use super::{NativeFuture, NativeModule};
use crate::model::{Line, LineId, LineStatus, Order};
use crate::runtime::bindings::config::Host as _;
use crate::runtime::bindings::http::{self, Host as _};
use crate::runtime::session::LineResult;
use crate::runtime::state::HostState;

const MODULE: &str = "enrollment";
const PRODUCT_TYPE: &str = "Seat";
const NETWORK_FAILURE_NOTE: &str = "Fulfillment of order failed due to a network problem.";
const TIMEOUT_FAILURE_NOTE: &str = "Fulfillment of order failed due to a request time out.";
const NO_DETAIL: &str = "(No detail provided.)";

pub(super) struct Enrollment;

/// The module's `[modules.config]`: where the LMS is, and its own time-out.
struct LmsConfig {
    enrollment_url: String,
    api_key: Option<String>,
    timeout_ms: Option<u32>,
}

fn config(host: &mut HostState) -> Result<LmsConfig, String> {
    let base_url = host
        .config
        .get("lms_url".into())
        .filter(|url| !url.trim().is_empty())
        .ok_or_else(|| format!("module {MODULE}: config key `lms_url` is not set in settings.toml"))?;
    let timeout_ms = match host.config.get("timeout_ms".into()) {
        None => None,
        Some(text) => Some(text.parse().map_err(|_| {
            format!("module {MODULE}: config key `timeout_ms` must be a whole number of milliseconds, not `{text}`")
        })?),
    };
    Ok(LmsConfig {
        enrollment_url: format!("{}/api/enrollment/v1/enrollment", base_url.trim_end_matches('/')),
        api_key: host.config.get("api_key".into()).filter(|key| !key.trim().is_empty()),
        timeout_ms,
    })
}

fn attribute<'a>(line: &'a Line, name: &str) -> Option<&'a str> {
    line.product.attributes.get(name).map(String::as_str)
}

/// The enrollment mode: `certificate_type`, else `seat_type`, else `audit`;
/// `professional` without ID verification is `no-id-professional`.
fn mode(line: &Line) -> String {
    let mode = attribute(line, "certificate_type")
        .or_else(|| attribute(line, "seat_type"))
        .filter(|mode| !mode.is_empty())
        .unwrap_or("audit");
    let verified_id = attribute(line, "id_verification_required").is_some_and(|flag| flag.eq_ignore_ascii_case("true") || flag == "1");
    if mode == "professional" && !verified_id { "no-id-professional".to_string() } else { mode.to_string() }
}

fn enrollment_body(order: &Order, line: &Line, course_key: &str) -> Value {
    let mut attributes = vec![
        json!({"namespace": "order", "name": "order_number", "value": order.number}),
        json!({"namespace": "order", "name": "date_placed", "value": order.date_placed_text()}),
    ];
    if let Some(provider) = attribute(line, "credit_provider") {
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

/// The reason in an LMS error body: `message`, DRF's `detail`, or its
/// validators' first `non_field_errors`.
fn error_message(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let non_field = json.get("non_field_errors").and_then(|errors| errors.get(0));
    [json.get("message"), json.get("detail"), non_field]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|reason| !reason.trim().is_empty())
        .map(str::to_string)
}

fn failed(status: LineStatus, message: String) -> LineResult {
    LineResult::Failed { status, message }
}

fn transport_failure(error: http::Error) -> LineResult {
    match error {
        http::Error::ConnectFailed(_) => failed(LineStatus::NetworkError, NETWORK_FAILURE_NOTE.into()),
        http::Error::Timeout => failed(LineStatus::TimeoutError, TIMEOUT_FAILURE_NOTE.into()),
        http::Error::Refused(why) => failed(LineStatus::ConfigurationError, format!("module {MODULE}: the host refused the request: {why}")),
        http::Error::InvalidRequest(why) => failed(LineStatus::ConfigurationError, format!("module {MODULE}: invalid request: {why}")),
        http::Error::ResponseTooLarge(cap) => failed(LineStatus::ServerError, format!("module {MODULE}: the response was larger than {cap} bytes")),
        http::Error::Other(why) => failed(LineStatus::ServerError, format!("module {MODULE}: {why}")),
    }
}

async fn enroll(host: &mut HostState, lms: &LmsConfig, order: &Order, line: &Line) -> LineResult {
    let Some(course_key) = attribute(line, "course_key").filter(|key| !key.is_empty()) else {
        return failed(LineStatus::ConfigurationError, format!("product {} has no course_key attribute", line.product.sku));
    };
    let header = |name: &str, value: &str| http::Header { name: name.to_string(), value: value.to_string() };
    let mut headers: Vec<http::Header> = lms.api_key.iter().map(|key| header("X-Edx-Api-Key", key)).collect();
    headers.push(header("Idempotency-Key", &line.idempotency_key(&order.number)));
    headers.push(header("Content-Type", "application/json"));
    let request = http::Request {
        method: "POST".into(),
        url: lms.enrollment_url.clone(),
        headers,
        body: Some(enrollment_body(order, line, course_key).to_string().into_bytes()),
        timeout_ms: lms.timeout_ms,
    };
    match host.http.send(request).await {
        Ok(response) if response.status == 200 => LineResult::Complete { attributes: Default::default(), note: None },
        Ok(response) => {
            let status = if response.status == 401 { LineStatus::ConfigurationError } else { LineStatus::ServerError };
            let mut message = format!(
                "Fulfillment of order {} failed: the LMS answered {} for {course_key}: {}",
                order.number,
                response.status,
                error_message(&response.body).unwrap_or_else(|| NO_DETAIL.to_string())
            );
            if response.status == 401 {
                message.push_str(" (give the host the LMS's credentials in [modules.credentials])");
            }
            failed(status, message)
        }
        Err(error) => transport_failure(error),
    }
}

impl NativeModule for Enrollment {
    fn lane(&self) -> (&'static str, &'static str) {
        (MODULE, PRODUCT_TYPE)
    }

    fn fulfill_product<'a>(
        &'a self,
        host: &'a mut HostState,
        order: &'a Order,
        lines: &'a [&'a Line],
    ) -> NativeFuture<'a, Vec<(LineId, LineResult)>> {
        Box::pin(async move {
            let lms = match config(host) {
                Ok(lms) => lms,
                Err(message) => {
                    return lines.iter().map(|line| (line.id, failed(LineStatus::ConfigurationError, message.clone()))).collect();
                }
            };
            let mut results = Vec::with_capacity(lines.len());
            for line in lines {
                results.push((line.id, enroll(host, &lms, order, line).await));
            }
            results
        })
    }
}
