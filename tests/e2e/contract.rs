//! The HTTP contract: every answer, including those made outside the
//! handlers (unknown route, 405, 413, 414, 431, bad path or query
//! parameters, the time-outs), has the error shape; every status an
//! operation answers is declared in `/api/v1/openapi.json` and its body
//! validates against the declared schema; idle and half-sent connections
//! are cut off; pages are bounded; refunds are listed by order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{ADMIN_TOKEN, CHECKOUT_TOKEN, Db, TestApp, checkout, shipped};
use crate::on_both_databases;

on_both_databases!(
    a_huge_page_is_refused,
    refunds_are_listed_by_order,
    every_answer_is_declared_in_the_openapi_document,
);

/// Only guards a test from hanging when the server never closes: the
/// server's own time-outs in these tests are a fraction of it.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn address(app: &TestApp) -> SocketAddr {
    let host = app.base.trim_start_matches("http://").trim_end_matches("/api/v1");
    host.parse().expect("the base URL holds the address")
}

fn root(app: &TestApp) -> String {
    app.base.trim_end_matches("/api/v1").to_string()
}

/// A request to `path` (from the root), answered: status, headers and the
/// body as JSON (`Value::Null` when empty, a string when not JSON).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app.http.request(method, format!("{}{path}", root(app)));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    answer(request).await
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("the host answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, body)
}

/// The answer is JSON in the error shape with `code`.
#[track_caller]
fn assert_error(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    let content_type = headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default();
    assert_eq!(content_type, "application/json", "{status}: {body}");
    assert_eq!(body["error"]["code"], code, "{status}: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
}

async fn a_huge_page_is_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.place(&checkout("59.00", "tok_success"), None).await;
    for query in ["page=18446744073709551615", "page=4611686018427387904", "page=1000001", "page=0"] {
        let (status, headers, body) = call(&app, Method::GET, &format!("/api/v1/orders?{query}"), Some(ADMIN_TOKEN), None).await;
        assert_error(status, &headers, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(body["error"]["field"], "page", "{query}: {body}");
    }
    for query in ["page_size=0", "page_size=101", "page_size=-1"] {
        let (status, headers, body) = call(&app, Method::GET, &format!("/api/v1/orders?{query}"), Some(ADMIN_TOKEN), None).await;
        assert_error(status, &headers, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(body["error"]["field"], "page_size", "{query}: {body}");
    }
    // The largest page is answered: empty, with a link back.
    let (status, page) = app.get("/orders?page=1000000&page_size=100", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!((page["count"].as_u64(), page["results"].as_array().map(Vec::len)), (Some(1), Some(0)));
    assert_eq!(page["previous"], "/api/v1/orders?page=999999&page_size=100");
    assert_eq!(page["next"], Value::Null);
}

async fn refunds_are_listed_by_order(db: Db) {
    let app = TestApp::spawn(db).await;
    app.place(&checkout("59.00", "tok_success"), None).await;
    app.place(&checkout("59.00", "tok_success"), None).await;
    let mut ids = Vec::new();
    for (number, line) in [("EDX-100001", 1), ("EDX-100001", 2), ("EDX-100002", 1)] {
        let refund = json!({"order_number": number, "line_ids": [line]});
        let (status, created) = app
            .send(app.http.post(format!("{}/refunds", app.base)).json(&refund), Some(ADMIN_TOKEN))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_i64().expect("an id"));
    }
    let (status, list) = app.get("/orders/EDX-100001/refunds", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["count"], 2);
    let listed: Vec<i64> = list["results"].as_array().expect("results").iter().filter_map(|r| r["id"].as_i64()).collect();
    assert_eq!(listed, [ids[1], ids[0]], "newest first, only this order's");
    let (_, one) = app.get(&format!("/refunds/{}", ids[0]), ADMIN_TOKEN).await;
    assert_eq!(list["results"][1], one, "a listed refund is the refund");

    let (status, page) = app.get("/orders/EDX-100001/refunds?page=2&page_size=1", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["results"][0]["id"], ids[0]);
    assert_eq!(page["previous"], "/api/v1/orders/EDX-100001/refunds?page=1&page_size=1");
    assert_eq!(page["next"], Value::Null);

    let (status, body) = app.get("/orders/EDX-999999/refunds", ADMIN_TOKEN).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_found")), "{body}");
    let (status, _) = app.get("/orders/EDX-100001/refunds", CHECKOUT_TOKEN).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "refunds are for staff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_outside_handlers_have_the_error_shape() {
    let app = TestApp::spawn(Db::Sqlite).await;
    for path in ["/api/v1/nope", "/nope", "/api/v1/orders/EDX-1/nope"] {
        let (status, headers, body) = call(&app, Method::GET, path, Some(ADMIN_TOKEN), None).await;
        assert_error(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
    }

    let (status, headers, body) = call(&app, Method::DELETE, "/api/v1/orders", Some(ADMIN_TOKEN), None).await;
    assert_error(status, &headers, &body, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let allow = headers.get("allow").and_then(|value| value.to_str().ok()).unwrap_or_default();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");

    let huge = "x".repeat(4 * 1024);
    let request = app
        .http
        .post(format!("{}/orders", app.base))
        .bearer_auth(CHECKOUT_TOKEN)
        .header("Content-Type", "application/json")
        .body(huge);
    let (status, headers, body) = answer(request).await;
    assert_error(status, &headers, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let long = format!("/api/v1/orders?username={}", "u".repeat(10 * 1024));
    let (status, headers, body) = call(&app, Method::GET, &long, Some(ADMIN_TOKEN), None).await;
    assert_error(status, &headers, &body, StatusCode::URI_TOO_LONG, "uri_too_long");

    let request = app.http.get(format!("{}/orders", app.base)).bearer_auth(ADMIN_TOKEN).header("X-Big", "b".repeat(20 * 1024));
    let (status, headers, body) = answer(request).await;
    assert_error(status, &headers, &body, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large");
    let mut request = app.http.get(format!("{}/orders", app.base)).bearer_auth(ADMIN_TOKEN);
    for n in 0..80 {
        request = request.header(format!("x-many-{n}"), "1");
    }
    let (status, headers, body) = answer(request).await;
    assert_error(status, &headers, &body, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large");

    for (path, field) in [
        ("/api/v1/refunds/abc", "id"),
        ("/api/v1/refunds/99999999999999999999", "id"),
        ("/api/v1/orders?page=abc", "page"),
        ("/api/v1/orders?page=-1", "page"),
        ("/api/v1/orders?colour=red", "colour"),
    ] {
        let (status, headers, body) = call(&app, Method::GET, path, Some(ADMIN_TOKEN), None).await;
        assert_error(status, &headers, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
}

/// Reads what the server sends until it closes the connection; fails if
/// it keeps the connection open past the guard.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection (it held it open past the guard)")
        .expect("the connection reads");
    String::from_utf8_lossy(&received).into_owned()
}

/// The server of the connection tests: short header and body read
/// time-outs, a request time-out longer than the guard (so it is never what
/// closes a connection).
async fn spawn_with_read_timeouts() -> TestApp {
    TestApp::spawn_with(
        Db::Sqlite,
        "[server]\nbind = \"127.0.0.1:0\"\nrequest_timeout_ms = 120000\nheader_read_timeout_ms = 300\nbody_read_timeout_ms = 300\n",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed() {
    let app = spawn_with_read_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address(&app)).await.expect("connect");
    let received = read_until_closed(&mut stream).await;
    assert!(!received.starts_with("HTTP/1.1 2"), "{received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_header_is_cut_off() {
    let app = spawn_with_read_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address(&app)).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ").await.expect("write");
    let received = read_until_closed(&mut stream).await;
    assert!(!received.starts_with("HTTP/1.1 2"), "nothing was answered to half a request: {received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_body_is_cut_off() {
    let app = spawn_with_read_timeouts().await;
    let mut stream = tokio::net::TcpStream::connect(address(&app)).await.expect("connect");
    let head = format!(
        "POST /api/v1/orders HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {CHECKOUT_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"user\": "
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let received = read_until_closed(&mut stream).await;
    assert!(received.starts_with("HTTP/1.1 408 "), "{received}");
    let body = received.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "body_timeout", "{received}");
    assert_eq!(app.charges(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_time_out_has_the_error_shape() {
    let app = TestApp::spawn_with(
        Db::Sqlite,
        "[server]\nbind = \"127.0.0.1:0\"\nrequest_timeout_ms = 300\n[fulfillment]\nsync_wait_ms = 100\n",
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(address(&app)).await.expect("connect");
    // A body that never ends keeps the handler waiting past the request
    // time-out (the body read time-out is longer).
    let head = format!(
        "POST /api/v1/orders HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {CHECKOUT_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"user\": "
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let received = read_until_closed(&mut stream).await;
    assert!(received.starts_with("HTTP/1.1 503 "), "{received}");
    assert!(received.to_ascii_lowercase().contains("content-type: application/json"), "{received}");
    let body = received.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "timeout", "{received}");
}

/// The OpenAPI document and the answers checked against it.
struct Contract {
    document: Value,
    /// Operations called: (method, path template).
    called: BTreeSet<(String, String)>,
    failures: Vec<String>,
}

impl Contract {
    async fn fetch(app: &TestApp) -> Contract {
        // The document is public: it describes the API, not its data.
        let (status, _, document) = call(app, Method::GET, "/api/v1/openapi.json", None, None).await;
        assert_eq!(status, StatusCode::OK, "{document}");
        Contract {
            document,
            called: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    /// A validator of `schema` (which may `$ref` the document's components).
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        if let Some(object) = root.as_object_mut() {
            object.insert("components".into(), self.document["components"].clone());
        }
        jsonschema::draft202012::new(&root).unwrap_or_else(|error| panic!("invalid schema {schema}: {error}"))
    }

    fn validate(&mut self, what: &str, schema: &Value, body: &Value) {
        let validator = self.validator(schema);
        let errors: Vec<String> = validator.iter_errors(body).map(|error| format!("{error} at {}", error.instance_path())).collect();
        if !errors.is_empty() {
            self.failures.push(format!("{what}: body {body} does not match {schema}: {}", errors.join("; ")));
        }
    }

    /// Sends the request and checks the answer against operation
    /// `method template` of the document; returns the answer.
    async fn check(
        &mut self,
        app: &TestApp,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let (status, headers, answer) = call(app, method.clone(), path, token, body).await;
        self.check_answer(&method, template, status, &headers, &answer);
        (status, answer)
    }

    fn check_answer(&mut self, method: &Method, template: &str, status: StatusCode, headers: &reqwest::header::HeaderMap, body: &Value) {
        let what = format!("{method} {template} -> {status}");
        let verb = method.as_str().to_ascii_lowercase();
        self.called.insert((verb.clone(), template.to_string()));
        let operation = &self.document["paths"][template][&verb];
        if !operation.is_object() {
            self.failures.push(format!("{what}: the operation is not in the document"));
            return;
        }
        let response = operation["responses"][status.as_str()].clone();
        if !response.is_object() {
            self.failures.push(format!("{what}: the status is not declared (body {body})"));
            return;
        }
        let response = match response["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/responses/");
                self.document["components"]["responses"][name].clone()
            }
            None => response,
        };
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_object() {
            let content_type = headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default();
            if content_type != "application/json" {
                self.failures.push(format!("{what}: content type `{content_type}`"));
            }
            self.validate(&what, &schema.clone(), body);
        } else if let Some(declared) = response["content"].as_object().and_then(|content| content.keys().next()) {
            // A body that is not JSON (the text of /metrics): its content
            // type is the declared one.
            let content_type = headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default();
            if content_type != declared {
                self.failures.push(format!("{what}: content type `{content_type}`, declared `{declared}`"));
            }
        } else if !body.is_null() {
            self.failures.push(format!("{what}: declares no body but answered {body}"));
        }
    }

    /// An answer that belongs to no operation (unknown route, 405): the
    /// error schema.
    fn check_error_shape(&mut self, what: &str, body: &Value) {
        self.validate(what, &json!({"$ref": "#/components/schemas/ErrorBody"}), body);
    }

    fn finish(self) {
        let mut uncalled = Vec::new();
        for (path, item) in self.document["paths"].as_object().into_iter().flatten() {
            for verb in item.as_object().into_iter().flatten().map(|(verb, _)| verb) {
                if !self.called.contains(&(verb.clone(), path.clone())) {
                    uncalled.push(format!("{verb} {path}"));
                }
            }
        }
        assert!(uncalled.is_empty(), "operations the contract test never calls: {uncalled:?}");
        assert!(self.failures.is_empty(), "answers that break the document:\n{}", self.failures.join("\n"));
    }
}

async fn every_answer_is_declared_in_the_openapi_document(db: Db) {
    let app = TestApp::spawn_with(
        db,
        "[server]\nbind = \"127.0.0.1:0\"\nbody_limit_bytes = 2048\n[fulfillment]\nsync_wait_ms = 200\n",
    )
    .await;
    let mut contract = Contract::fetch(&app).await;
    // The checker can fail: an undeclared status, and a body off its
    // schema, are caught.
    let mut probe = Contract {
        document: contract.document.clone(),
        called: BTreeSet::new(),
        failures: Vec::new(),
    };
    let mut json_headers = reqwest::header::HeaderMap::new();
    json_headers.insert("content-type", reqwest::header::HeaderValue::from_static("application/json"));
    probe.check_answer(&Method::GET, "/api/v1/modules", StatusCode::IM_A_TEAPOT, &json_headers, &json!({}));
    probe.check_answer(&Method::GET, "/api/v1/orders/{number}", StatusCode::OK, &json_headers, &json!({"number": 1}));
    probe.check_answer(&Method::GET, "/api/v1/orders/{number}", StatusCode::NOT_FOUND, &json_headers, &json!({"error": {}}));
    assert_eq!(probe.failures.len(), 3, "{:?}", probe.failures);
    let c = &mut contract;
    let (admin, shop) = (Some(ADMIN_TOKEN), Some(CHECKOUT_TOKEN));

    // Meta.
    c.check(&app, Method::GET, "/healthz", "/healthz", None, None).await;
    c.check(&app, Method::GET, "/readyz", "/readyz", None, None).await;
    c.check(&app, Method::GET, "/api/v1/openapi.json", "/api/v1/openapi.json", None, None).await;
    for (token, expected) in [(admin, StatusCode::OK), (shop, StatusCode::FORBIDDEN), (None, StatusCode::UNAUTHORIZED)] {
        let (status, _) = c.check(&app, Method::GET, "/metrics", "/metrics", token, None).await;
        assert_eq!(status, expected);
    }

    // Orders.
    let orders = "/api/v1/orders";
    // With both addresses: the answer's address records validate too.
    let (status, _) = c.check(&app, Method::POST, orders, orders, shop, Some(&shipped(checkout("59.00", "tok_success")))).await;
    assert_eq!(status, StatusCode::CREATED);
    let body = checkout("59.00", "tok_success");
    let request = app.http.post(format!("{}{orders}", root(&app))).bearer_auth(CHECKOUT_TOKEN).header("Idempotency-Key", "k-1");
    for expected in [StatusCode::CREATED, StatusCode::OK] {
        let (status, headers, answer) = answer(request.try_clone().expect("clonable").json(&body)).await;
        assert_eq!(status, expected, "{answer}");
        c.check_answer(&Method::POST, orders, status, &headers, &answer);
    }
    let mut other = checkout("108.00", "tok_success");
    other["basket"][0]["quantity"] = json!(2);
    let (status, headers, answer_) = answer(request.try_clone().expect("clonable").json(&other)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    c.check_answer(&Method::POST, orders, status, &headers, &answer_);
    for (body, expected) in [
        (checkout("59.00", "tok_decline"), StatusCode::PAYMENT_REQUIRED),
        (checkout("59.00", "tok_error"), StatusCode::BAD_GATEWAY),
        (checkout("58.99", "tok_success"), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"user": 1}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"shipping_address": {"company": "edX"}}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, answer) = c.check(&app, Method::POST, orders, orders, shop, Some(&body)).await;
        assert_eq!(status, expected, "{answer}");
    }
    let (status, _) = c.check(&app, Method::POST, orders, orders, None, Some(&checkout("59.00", "tok_success"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (content_type, body, expected) in [
        ("application/json", "{not json".to_string(), StatusCode::BAD_REQUEST),
        ("text/plain", "{}".to_string(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("application/json", "x".repeat(4096), StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let request = app
            .http
            .post(format!("{}{orders}", root(&app)))
            .bearer_auth(CHECKOUT_TOKEN)
            .header("Content-Type", content_type)
            .body(body);
        let (status, headers, answer) = answer(request).await;
        assert_eq!(status, expected, "{answer}");
        c.check_answer(&Method::POST, orders, status, &headers, &answer);
    }
    // Fulfillment that outlasts sync_wait_ms: 202.
    app.lms.delay(Duration::from_secs(2));
    let (status, pending) = c.check(&app, Method::POST, orders, orders, shop, Some(&checkout("59.00", "tok_success"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    app.lms.heal();
    let pending = pending["number"].as_str().expect("a number").to_string();
    app.settled_order(&pending).await;

    for (path, token, expected) in [
        ("/api/v1/orders", admin, StatusCode::OK),
        ("/api/v1/orders?status=Complete&page=1&page_size=5", shop, StatusCode::OK),
        ("/api/v1/orders?status=Lost", admin, StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/orders?page=99999999999", admin, StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/orders", None, StatusCode::UNAUTHORIZED),
    ] {
        let (status, answer) = c.check(&app, Method::GET, orders, path, token, None).await;
        assert_eq!(status, expected, "{path}: {answer}");
    }
    let long = format!("/api/v1/orders?username={}", "u".repeat(10 * 1024));
    let (status, _) = c.check(&app, Method::GET, orders, &long, admin, None).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    let request = app.http.get(format!("{}{orders}", root(&app))).bearer_auth(ADMIN_TOKEN).header("X-Big", "b".repeat(20 * 1024));
    let (status, headers, answer_) = answer(request).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    c.check_answer(&Method::GET, orders, status, &headers, &answer_);

    let order = "/api/v1/orders/{number}";
    for (path, expected) in [("/api/v1/orders/EDX-100001", StatusCode::OK), ("/api/v1/orders/EDX-1", StatusCode::NOT_FOUND)] {
        let (status, answer) = c.check(&app, Method::GET, order, path, shop, None).await;
        assert_eq!(status, expected, "{answer}");
    }

    let fulfill = "/api/v1/orders/{number}/fulfill";
    for (path, token, expected) in [
        ("/api/v1/orders/EDX-100001/fulfill", shop, StatusCode::FORBIDDEN),
        ("/api/v1/orders/EDX-100001/fulfill", admin, StatusCode::NOT_ACCEPTABLE),
        ("/api/v1/orders/EDX-1/fulfill", admin, StatusCode::NOT_FOUND),
    ] {
        let (status, answer) = c.check(&app, Method::PUT, fulfill, path, token, None).await;
        assert_eq!(status, expected, "{answer}");
    }
    app.lms.fail_all(503, "LMS down for maintenance");
    let (_, failed) = app.place(&checkout("59.00", "tok_success"), None).await;
    let failed = failed["number"].as_str().expect("a number").to_string();
    let (status, _) = c.check(&app, Method::PUT, fulfill, &format!("/api/v1/orders/{failed}/fulfill"), admin, None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    app.lms.heal();
    let (status, _) = c.check(&app, Method::PUT, fulfill, &format!("/api/v1/orders/{failed}/fulfill"), admin, None).await;
    assert_eq!(status, StatusCode::OK);

    // Refunds.
    let refunds = "/api/v1/refunds";
    let new_refund = json!({"order_number": "EDX-100001", "line_ids": [1]});
    for (body, token, expected) in [
        (new_refund.clone(), admin, StatusCode::CREATED),
        (new_refund.clone(), admin, StatusCode::CONFLICT),
        (new_refund.clone(), shop, StatusCode::FORBIDDEN),
        (json!({"order_number": "EDX-100001", "line_ids": []}), admin, StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"order_number": "EDX-1", "line_ids": [1]}), admin, StatusCode::NOT_FOUND),
    ] {
        let (status, answer) = c.check(&app, Method::POST, refunds, refunds, token, Some(&body)).await;
        assert_eq!(status, expected, "{answer}");
    }
    let refund = "/api/v1/refunds/{id}";
    for (path, expected) in [
        ("/api/v1/refunds/1", StatusCode::OK),
        ("/api/v1/refunds/999", StatusCode::NOT_FOUND),
        ("/api/v1/refunds/abc", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, answer) = c.check(&app, Method::GET, refund, path, admin, None).await;
        assert_eq!(status, expected, "{answer}");
    }
    let process = "/api/v1/refunds/{id}/process";
    for (path, body, expected) in [
        ("/api/v1/refunds/1/process", json!({"action": "approve"}), StatusCode::OK),
        ("/api/v1/refunds/1/process", json!({"action": "deny"}), StatusCode::CONFLICT),
        ("/api/v1/refunds/1/process", json!({"action": "refund twice"}), StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/refunds/999/process", json!({"action": "deny"}), StatusCode::NOT_FOUND),
    ] {
        let (status, answer) = c.check(&app, Method::PUT, process, path, admin, Some(&body)).await;
        assert_eq!(status, expected, "{answer}");
    }
    let by_order = "/api/v1/orders/{number}/refunds";
    for (path, expected) in [
        ("/api/v1/orders/EDX-100001/refunds", StatusCode::OK),
        ("/api/v1/orders/EDX-1/refunds", StatusCode::NOT_FOUND),
        ("/api/v1/orders/EDX-100001/refunds?page_size=1000", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, answer) = c.check(&app, Method::GET, by_order, path, admin, None).await;
        assert_eq!(status, expected, "{answer}");
    }

    // Products and modules.
    let products = "/api/v1/products";
    let product = json!({"sku": "BOOK", "product_type": "Book", "title": "A book", "price": "5.00", "currency": "USD"});
    for (method, body, token, expected) in [
        (Method::GET, None, shop, StatusCode::OK),
        (Method::POST, Some(product.clone()), admin, StatusCode::CREATED),
        (Method::POST, Some(product.clone()), shop, StatusCode::FORBIDDEN),
        (Method::POST, Some(json!({"sku": "BOOK"})), admin, StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, answer) = c.check(&app, method, products, products, token, body.as_ref()).await;
        assert_eq!(status, expected, "{answer}");
    }
    let modules = "/api/v1/modules";
    for (token, expected) in [(admin, StatusCode::OK), (shop, StatusCode::FORBIDDEN)] {
        let (status, answer) = c.check(&app, Method::GET, modules, modules, token, None).await;
        assert_eq!(status, expected, "{answer}");
    }

    // Every method the router serves on a documented path is documented;
    // the others are 405 in the error shape, unknown routes 404.
    let paths: BTreeMap<String, Value> = c.document["paths"].as_object().cloned().unwrap_or_default().into_iter().collect();
    for (template, item) in &paths {
        let path = template.replace("{number}", "EDX-100001").replace("{id}", "1");
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            if item[method.as_str().to_ascii_lowercase()].is_object() {
                continue;
            }
            let (status, _, body) = call(&app, method.clone(), &path, admin, None).await;
            if status != StatusCode::METHOD_NOT_ALLOWED {
                c.failures.push(format!("{method} {template} answers {status}, undocumented: {body}"));
            }
            c.check_error_shape(&format!("{method} {template}"), &body);
        }
    }
    let (status, _, body) = call(&app, Method::GET, "/api/v1/nothing-here", admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    c.check_error_shape("unknown route", &body);

    contract.finish();
}
