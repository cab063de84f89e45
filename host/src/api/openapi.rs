//! The OpenAPI document of the whole API, `GET /api/v1/openapi.json`: the
//! handlers' annotations (the router is built from them, so a route cannot
//! be served without being documented), completed by [`complete`] with the
//! answers every operation can give (the error shape for 401, 414, 431,
//! 500, 503; 400, 408, 413, 415, 422 for a body; 422 for a parameter).
//!
//! The document is public (no token): it describes the API, not its data,
//! and clients generate their code from it.

use std::sync::Arc;

use axum::Extension;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(title = "fulfillment-host", description = "Places orders and fulfills them through WebAssembly modules. \
        Every error has the shape of `ErrorBody`; docs/api.md tells the codes."),
    tags(
        (name = "orders", description = "Place, read and list orders; staff retry of fulfillment"),
        (name = "refunds", description = "Refunds of Complete orders: create, read, list by order, approve or deny"),
        (name = "products", description = "The catalog"),
        (name = "modules", description = "The fulfillment modules the host runs"),
        (name = "meta", description = "Health, readiness and this document (no token)"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The served document, as JSON once.
#[derive(Clone)]
pub struct Document(Arc<Vec<u8>>);

impl Document {
    pub fn new(document: &Value) -> Document {
        Document(Arc::new(serde_json::to_vec(document).unwrap_or_default()))
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of the API", content_type = "application/json", body = Object)))]
async fn openapi_json(Extension(document): Extension<Document>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], document.0.as_ref().clone())
}

/// The answers of the error shape every operation may give, by name in
/// `components.responses`: (name, status, description).
const SHARED: [(&str, &str, &str); 10] = [
    ("Unauthorized", "401", "No or unknown bearer token"),
    ("UriTooLong", "414", "The URI is longer than `[server] max_uri_bytes` (a URI past hyper's own buffer gets hyper's 431 with no body)"),
    ("HeadersTooLarge", "431", "More header bytes or headers than `[server] max_header_bytes`, `max_headers` (past hyper's own limits, twice as many headers or its buffer, hyper answers 431 with no body)"),
    ("Internal", "500", "The host failed (see its log)"),
    ("Unavailable", "503", "The request took longer than `[server] request_timeout_ms` (work it started goes on), or the database is busy"),
    ("MalformedJson", "400", "The body is not JSON"),
    ("BodyTimeout", "408", "The body was not sent within `[server] body_read_timeout_ms`"),
    ("TooLarge", "413", "The body (or its announced `Content-Length`, on any route) is larger than `[server] body_limit_bytes`"),
    ("UnsupportedMediaType", "415", "No `Content-Type: application/json`"),
    ("Invalid", "422", "A field or parameter is wrong: `field` names it"),
];

/// The document of `openapi` with the answers every operation can give
/// (see the module's doc), and every error answer in the error shape.
pub fn complete(openapi: utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(openapi).unwrap_or_else(|_| json!({}));
    let error_body = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
    for (name, _, description) in SHARED {
        document["components"]["responses"][name] = json!({"description": description, "content": error_body});
    }
    let shared = |name: &str| json!({"$ref": format!("#/components/responses/{name}")});
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return document;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let secured = operation.get("security").and_then(Value::as_array).is_some_and(|security| !security.is_empty());
            let has_body = operation.contains_key("requestBody");
            let has_parameters = operation
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|parameters| parameters.iter().any(|parameter| parameter["in"] == "path" || parameter["in"] == "query"));
            // The body limit looks at Content-Length before routing: any
            // operation can answer 413.
            let mut names = vec!["UriTooLong", "HeadersTooLarge", "TooLarge", "Internal", "Unavailable"];
            if secured {
                names.push("Unauthorized");
            }
            if has_body {
                names.extend(["MalformedJson", "BodyTimeout", "TooLarge", "UnsupportedMediaType", "Invalid"]);
            }
            if has_parameters {
                names.push("Invalid");
            }
            let responses = operation.entry("responses").or_insert_with(|| json!({}));
            for name in names {
                let status = SHARED.iter().find(|(shared_name, ..)| *shared_name == name).map(|(_, status, _)| *status);
                if let Some(status) = status
                    && responses.get(status).is_none()
                {
                    responses[status] = shared(name);
                }
            }
            // An error declared without a body has the error shape.
            for (status, response) in responses.as_object_mut().into_iter().flatten() {
                if status.as_str() >= "400" && response.get("$ref").is_none() && response.get("content").is_none() {
                    response["content"] = error_body.clone();
                }
            }
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every operation of the served document declares the answers every
    /// operation can give, and every error answer has the error shape.
    #[test]
    fn every_operation_declares_the_shared_errors_in_the_error_shape() {
        let document = super::super::openapi_document();
        let paths = document["paths"].as_object().expect("paths");
        assert!(paths.contains_key("/healthz") && paths.contains_key("/readyz") && paths.contains_key("/api/v1/openapi.json"));
        for (path, item) in paths {
            for (verb, operation) in item.as_object().expect("a path item") {
                let responses = operation["responses"].as_object().expect("responses");
                for status in ["414", "431", "500", "503"] {
                    assert!(responses.contains_key(status), "{verb} {path} does not declare {status}");
                }
                if operation["security"].as_array().is_some_and(|security| !security.is_empty()) {
                    assert!(responses.contains_key("401"), "{verb} {path} does not declare 401");
                }
                if operation.get("requestBody").is_some() {
                    for status in ["400", "408", "413", "415", "422"] {
                        assert!(responses.contains_key(status), "{verb} {path} does not declare {status}");
                    }
                }
                assert!(operation["tags"].as_array().is_some_and(|tags| tags.len() == 1), "{verb} {path} has no tag");
                for (status, response) in responses.iter().filter(|(status, _)| status.as_str() >= "400") {
                    let schema = match response["$ref"].as_str() {
                        Some(reference) => {
                            let name = reference.trim_start_matches("#/components/responses/");
                            document["components"]["responses"][name]["content"]["application/json"]["schema"].clone()
                        }
                        None => response["content"]["application/json"]["schema"].clone(),
                    };
                    assert_ne!(schema, Value::Null, "{verb} {path} {status} has no schema");
                }
            }
        }
    }

    #[test]
    fn currencies_and_statuses_are_enums() {
        let document = super::super::openapi_document();
        let schemas = &document["components"]["schemas"];
        let currencies = schemas["Currency"]["enum"].as_array().expect("currency codes");
        assert!(currencies.contains(&Value::from("USD")) && currencies.contains(&Value::from("EUR")));
        assert_eq!(schemas["OrderStatus"]["enum"][1], "Payment Error");
        for schema in ["OrderView", "PlaceOrder", "RefundView", "ProductView", "ProductSettings"] {
            assert_eq!(schemas[schema]["properties"]["currency"]["$ref"], "#/components/schemas/Currency", "{schema}");
        }
        assert_eq!(schemas["BasketLine"]["properties"]["quantity"]["minimum"], 1, "{}", schemas["BasketLine"]);
    }

    #[test]
    fn list_parameters_are_optional_query_parameters() {
        let document = super::super::openapi_document();
        for path in ["/api/v1/orders", "/api/v1/orders/{number}/refunds"] {
            let parameters = document["paths"][path]["get"]["parameters"].as_array().expect("parameters").clone();
            let page = parameters.iter().find(|parameter| parameter["name"] == "page").expect("a page parameter");
            assert_eq!((&page["in"], &page["required"], &page["schema"]["maximum"]), (&"query".into(), &false.into(), &1_000_000.into()));
        }
    }
}
