//! {{name}}: a fulfillment module (WIT `commerce:fulfillment@1.1.0`, in
//! wit/) that fulfills the lines of product type {{product_type}} by
//! calling one HTTP service.
//!
//! Config (settings.toml `[modules.config]`, or `run-module --config`):
//! `service_url` (required), such as `https://service.example.com`; the
//! operator also lists it in the module's `allowed_hosts`. For each line the
//! module POSTs `{service_url}/fulfillments` with the line's idempotency key
//! and stores the `reference` the service answers on the line; a refund
//! POSTs `{service_url}/revocations`.

wit_bindgen::generate!({ path: "wit", world: "fulfillment-module" });

use commerce::fulfillment::types::{Attribute, Completion, Failure, FailureKind, Outcome, RevocationCause};
use commerce::fulfillment::{config, http, log};
use serde_json::{Value, json};

/// The product type this module fulfills, spelled as in the catalog.
const PRODUCT_TYPE: &str = {{product_type}};
/// The config key of the service's base URL.
const SERVICE_URL: &str = "service_url";

struct Module;

impl Guest for Module {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            product_types: vec![PRODUCT_TYPE.to_string()],
        }
    }

    fn supports_lines(_order: Order, lines: Vec<Line>) -> Vec<bool> {
        lines.iter().map(|line| line.product.product_type == PRODUCT_TYPE).collect()
    }

    fn fulfill_product(order: Order, lines: Vec<Line>, email_opt_in: bool) -> Vec<LineOutcome> {
        let service_url = match service_url() {
            Ok(url) => url,
            Err(failure) => return lines.iter().map(|line| failed(line, failure.clone())).collect(),
        };
        log::log(log::Level::Info, &format!("fulfilling {} line(s) through {service_url}", lines.len()));
        lines
            .iter()
            .map(|line| fulfill(&service_url, &order, line, email_opt_in))
            .collect()
    }

    fn revoke_line(order: Order, line: Line, revocation: Revocation) -> RevokeOutcome {
        let service_url = match service_url() {
            Ok(url) => url,
            Err(failure) => return RevokeOutcome::NotRevoked(failure.message),
        };
        let RevocationCause::Refund(refund_id) = revocation.cause;
        let body = json!({
            "order_number": order.number,
            "line_id": line.id,
            "refund_id": refund_id,
            "reference": stored(&line, "service_reference"),
        });
        match post(&format!("{service_url}/revocations"), &revocation.idempotency_key, &body) {
            Ok(response) if (200..300).contains(&response.status) => RevokeOutcome::Revoked(None),
            Ok(response) => RevokeOutcome::NotRevoked(answered(&response)),
            Err(error) => RevokeOutcome::NotRevoked(transport_failure(&service_url, &error).message),
        }
    }
}

/// The service's base URL from the config, without a trailing `/`.
fn service_url() -> Result<String, Failure> {
    match config::get(SERVICE_URL) {
        Some(url) if !url.trim().is_empty() => Ok(url.trim().trim_end_matches('/').to_string()),
        _ => Err(Failure {
            kind: FailureKind::Configuration,
            message: format!("config key `{SERVICE_URL}` is not set (settings.toml `[modules.config]`)"),
        }),
    }
}

/// Fulfills one line: POST /fulfillments, with the line's idempotency key so
/// that a retry does not fulfill it twice.
fn fulfill(service_url: &str, order: &Order, line: &Line, email_opt_in: bool) -> LineOutcome {
    let body = json!({
        "order_number": order.number,
        "line_id": line.id,
        "sku": line.product.sku,
        "quantity": line.quantity,
        "username": order.user.username,
        "email": order.user.email,
        "email_opt_in": email_opt_in,
    });
    match post(&format!("{service_url}/fulfillments"), &line.idempotency_key, &body) {
        Ok(response) if (200..300).contains(&response.status) => {
            let reference = serde_json::from_slice::<Value>(&response.body)
                .ok()
                .and_then(|answer| answer.get("reference")?.as_str().map(str::to_string));
            let attributes = reference
                .map(|value| vec![Attribute { name: "service_reference".to_string(), value }])
                .unwrap_or_default();
            LineOutcome {
                line_id: line.id,
                outcome: Outcome::Complete(Completion { attributes, note: None }),
            }
        }
        Ok(response) => failed(line, Failure { kind: FailureKind::Server, message: answered(&response) }),
        Err(error) => failed(line, transport_failure(service_url, &error)),
    }
}

/// POSTs `body` as JSON to `url` through the host.
fn post(url: &str, idempotency_key: &str, body: &Value) -> Result<http::Response, http::Error> {
    let header = |name: &str, value: &str| http::Header { name: name.to_string(), value: value.to_string() };
    http::send(&http::Request {
        method: "POST".to_string(),
        url: url.to_string(),
        headers: vec![header("Content-Type", "application/json"), header("Idempotency-Key", idempotency_key)],
        body: Some(body.to_string().into_bytes()),
        timeout_ms: None,
    })
}

/// The failure for a call that got no answer: the line's status tells staff
/// what to look at.
fn transport_failure(service_url: &str, error: &http::Error) -> Failure {
    let (kind, message) = match error {
        http::Error::ConnectFailed(why) => (FailureKind::Network, format!("cannot reach the service at {service_url}: {why}")),
        http::Error::Timeout => (FailureKind::Timeout, format!("the service at {service_url} did not answer in time")),
        http::Error::Refused(why) => (
            FailureKind::Configuration,
            format!("the host refused the call to {service_url} (is it in allowed_hosts?): {why}"),
        ),
        http::Error::InvalidRequest(why) => {
            (FailureKind::Configuration, format!("cannot call {service_url} (check `{SERVICE_URL}`): {why}"))
        }
        http::Error::ResponseTooLarge(cap) => {
            (FailureKind::Server, format!("the service's answer is larger than {cap} bytes"))
        }
        http::Error::Other(why) => (FailureKind::Server, format!("calling {service_url} failed: {why}")),
    };
    Failure { kind, message }
}

/// "the service answered 503: <the start of its body>".
fn answered(response: &http::Response) -> String {
    let body = String::from_utf8_lossy(&response.body);
    let excerpt: String = body.trim().chars().take(200).collect();
    format!("the service answered {}: {excerpt}", response.status)
}

fn failed(line: &Line, failure: Failure) -> LineOutcome {
    LineOutcome { line_id: line.id, outcome: Outcome::Failed(failure) }
}

/// An attribute stored on the line when it was fulfilled.
fn stored<'a>(line: &'a Line, name: &str) -> Option<&'a str> {
    line.stored_attributes
        .iter()
        .find(|attribute| attribute.name == name)
        .map(|attribute| attribute.value.as_str())
}

export!(Module);
