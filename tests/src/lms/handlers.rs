//! The stand-in's HTTP endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::auth::{self, Accepts, CLIENT_ID, CLIENT_SECRET, NOT_PROVIDED, Refusal, SERVICE_USER};
use super::state::{Entitlement, LmsState, RecordedRequest, Reply, TokenRequest};

/// edx-platform's EntitlementsPagination.
const ENTITLEMENTS_PAGE_SIZE: usize = 50;
const ENTITLEMENTS_MAX_PAGE_SIZE: usize = 100;

pub(super) fn router(state: Arc<LmsState>) -> Router {
    let api = Router::new()
        .route("/api/enrollment/v1/enrollment", post(enrollment))
        .route("/api/entitlements/v1/entitlements/", post(create_entitlement).get(list_entitlements))
        .route(
            "/api/entitlements/v1/entitlements/{uuid}/",
            get(get_entitlement).delete(revoke_entitlement),
        )
        .layer(middleware::from_fn_with_state(state.clone(), record_and_misbehave));
    Router::new()
        .route("/oauth2/access_token", post(access_token))
        .merge(api)
        .with_state(state)
}

/// An edx-platform error answer: `{"message": ...}` (an empty message: an
/// empty body).
fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if message.is_empty() {
        return status.into_response();
    }
    (status, Json(json!({ "message": message }))).into_response()
}

/// A Django REST framework error answer: `{"detail": ...}`.
fn detail(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({ "detail": detail }))).into_response()
}

/// DRF's 401: `WWW-Authenticate` names the scheme the view wants first.
fn unauthenticated(Refusal(why): Refusal) -> Response {
    let mut response = detail(StatusCode::UNAUTHORIZED, why);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("JWT realm=\"api\""));
    response
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_string)
}

/// Records each API request, applies the switches, and notes the status it
/// was answered with. An answer delay applies to successful answers only:
/// the work is done, the answer comes late.
async fn record_and_misbehave(State(state): State<Arc<LmsState>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return error(413, "request body too large");
    };
    let index = state.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        api_key: header_text(&parts.headers, "x-edx-api-key"),
        authorization: header_text(&parts.headers, "authorization"),
        idempotency_key: header_text(&parts.headers, "idempotency-key"),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        status: 0,
    });
    let (failure, delay, hang) = state.misbehaviour();
    if hang {
        std::future::pending::<()>().await;
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let response = match failure {
        Some(Reply { status, message }) => error(status, &message),
        None => next.run(Request::from_parts(parts, Body::from(bytes))).await,
    };
    state.answered(index, response.status().as_u16());
    if response.status().is_success()
        && let Some(delay) = state.answer_delay()
    {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Who is calling, or the 401 to answer.
#[allow(clippy::result_large_err)] // the error is the answer itself, as axum handlers return it
fn authenticate(state: &LmsState, headers: &HeaderMap, accepts: Accepts) -> Result<String, Response> {
    if let Some(authorization) = header_text(headers, "authorization") {
        // drf-jwt and DRF compare the scheme without regard to case.
        let (scheme, token) = authorization.split_once(' ').unwrap_or((authorization.as_str(), ""));
        if scheme.eq_ignore_ascii_case("jwt") {
            return auth::verify_jwt(&state.signing_key(), token.trim()).map_err(unauthenticated);
        }
        if accepts == Accepts::ApiKeyOrToken && scheme.eq_ignore_ascii_case("bearer") {
            return if state.is_valid_bearer(token.trim()) {
                Ok(SERVICE_USER.to_string())
            } else {
                Err(unauthenticated(Refusal("Invalid token.")))
            };
        }
    }
    if accepts == Accepts::ApiKeyOrToken && header_text(headers, "x-edx-api-key").as_deref() == Some(state.api_key.as_str()) {
        return Ok(SERVICE_USER.to_string());
    }
    Err(unauthenticated(Refusal(NOT_PROVIDED)))
}

/// `POST /oauth2/access_token`: the client-credentials grant.
async fn access_token(
    State(state): State<Arc<LmsState>>,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = form.map(|Form(form)| form).unwrap_or_default();
    let field = |name: &str| form.get(name).cloned();
    let answer = if let Some(Reply { status, message }) = state.token_failure() {
        error(status, &message)
    } else if field("grant_type").as_deref() != Some("client_credentials") {
        (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response()
    } else if field("client_id").as_deref() != Some(CLIENT_ID) || field("client_secret").as_deref() != Some(CLIENT_SECRET) {
        (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response()
    } else {
        let lifetime = state.token_lifetime_s();
        let scope = "read write email profile";
        if field("token_type").is_some_and(|kind| kind.eq_ignore_ascii_case("jwt")) {
            let token = auth::sign_jwt(&state.signing_key(), "http://lms-standin/oauth2", SERVICE_USER, lifetime);
            Json(json!({"access_token": token, "token_type": "JWT", "expires_in": lifetime, "scope": scope})).into_response()
        } else {
            let token = state.issue_bearer();
            Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope})).into_response()
        }
    };
    state.record_token_request(TokenRequest {
        grant_type: field("grant_type"),
        client_id: field("client_id"),
        token_type: field("token_type"),
        status: answer.status().as_u16(),
    });
    answer
}

fn text<'a>(json: &'a Value, pointer: &str) -> Option<&'a str> {
    json.pointer(pointer).and_then(Value::as_str)
}

async fn enrollment(State(state): State<Arc<LmsState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = authenticate(&state, &headers, Accepts::ApiKeyOrToken) {
        return refused;
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(user), Some(course_id), Some(is_active)) = (
        text(&json, "/user"),
        text(&json, "/course_details/course_id"),
        json.get("is_active").and_then(Value::as_bool),
    ) else {
        return error(400, "user, is_active and course_details.course_id are required");
    };
    let mode = text(&json, "/mode").unwrap_or("audit");
    if state.is_unknown_user(user) {
        return error(406, &format!("The user {user} does not exist."));
    }
    if !course_id.starts_with("course-v1:") {
        return error(400, &format!("No course '{course_id}' found for enrollment"));
    }
    if let Some(Reply { status, message }) = state.course_failure(course_id) {
        return error(status, &message);
    }
    if is_active {
        state.enroll(user, course_id, mode, header_text(&headers, "idempotency-key").as_deref());
    } else if let Err(active_mode) = state.unenroll(user, course_id, mode) {
        return error(
            400,
            &format!("Enrollment mode mismatch: active mode={active_mode}, requested mode={mode}. Won't deactivate."),
        );
    }
    let record = json!({
        "user": user,
        "mode": mode,
        "is_active": is_active,
        "course_details": { "course_id": course_id },
    });
    (StatusCode::OK, Json(record)).into_response()
}

/// An entitlement as edx-platform's CourseEntitlementSerializer writes it.
fn entitlement_json(uuid: &str, entitlement: &Entitlement) -> Value {
    json!({
        "user": entitlement.user,
        "uuid": uuid,
        "course_uuid": entitlement.course_uuid,
        "enrollment_course_run": null,
        "expired_at": if entitlement.revoked { json!("2026-12-01T00:00:00Z") } else { Value::Null },
        "created": "2026-12-01T00:00:00Z",
        "modified": "2026-12-01T00:00:00Z",
        "mode": entitlement.mode,
        "refund_locked": false,
        "order_number": if entitlement.order_number.is_empty() { Value::Null } else { json!(entitlement.order_number) },
        "support_details": [],
    })
}

async fn create_entitlement(State(state): State<Arc<LmsState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = authenticate(&state, &headers, Accepts::JwtOnly) {
        return refused;
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let missing: Vec<&str> = ["user", "course_uuid", "mode"]
        .into_iter()
        .filter(|field| text(&json, &format!("/{field}")).is_none_or(str::is_empty))
        .collect();
    if !missing.is_empty() {
        let errors: serde_json::Map<String, Value> = missing
            .into_iter()
            .map(|field| (field.to_string(), json!(["This field is required."])))
            .collect();
        return (StatusCode::BAD_REQUEST, Json(Value::Object(errors))).into_response();
    }
    let user = text(&json, "/user").unwrap_or_default();
    if state.is_unknown_user(user) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"user": [format!("Object with username={user} does not exist.")]})),
        )
            .into_response();
    }
    let entitlement = Entitlement {
        user: user.to_string(),
        course_uuid: text(&json, "/course_uuid").unwrap_or_default().to_string(),
        mode: text(&json, "/mode").unwrap_or_default().to_string(),
        order_number: text(&json, "/order_number").unwrap_or_default().to_string(),
        revoked: false,
    };
    match state.create_entitlement(entitlement.clone(), header_text(&headers, "idempotency-key").as_deref()) {
        Some(uuid) => (StatusCode::CREATED, Json(entitlement_json(&uuid, &entitlement))).into_response(),
        // The model's unique_together, as DRF's validator words it.
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"non_field_errors": ["The fields course_uuid, order_number must make a unique set."]})),
        )
            .into_response(),
    }
}

/// `GET /api/entitlements/v1/entitlements/?user=&uuid=&page=&page_size=`:
/// edx-platform's filters (user by username; uuid as a comma list) and
/// DefaultPagination's answer.
async fn list_entitlements(
    State(state): State<Arc<LmsState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = authenticate(&state, &headers, Accepts::JwtOnly) {
        return refused;
    }
    let uuids: Option<Vec<&str>> = query.get("uuid").map(|list| list.split(',').collect());
    let found: Vec<Value> = state
        .entitlements_of(query.get("user").map(String::as_str))
        .into_iter()
        .filter(|(uuid, _)| uuids.as_ref().is_none_or(|uuids| uuids.contains(&uuid.as_str())))
        .map(|(uuid, entitlement)| entitlement_json(&uuid, &entitlement))
        .collect();
    let page_size = query
        .get("page_size")
        .and_then(|size| size.parse::<usize>().ok())
        .filter(|size| *size > 0)
        .map_or(ENTITLEMENTS_PAGE_SIZE, |size| size.min(ENTITLEMENTS_MAX_PAGE_SIZE));
    let num_pages = found.len().div_ceil(page_size).max(1);
    let Some(page) = query.get("page").map_or(Some(1), |page| page.parse::<usize>().ok()).filter(|page| (1..=num_pages).contains(page)) else {
        return detail(StatusCode::NOT_FOUND, "Invalid page.");
    };
    // The page links keep the filters, as DRF's do.
    let filters: String = ["user", "uuid"]
        .into_iter()
        .filter_map(|name| query.get(name).map(|value| format!("&{name}={value}")))
        .collect();
    let link = |page: usize| {
        json!(format!("http://lms-standin/api/entitlements/v1/entitlements/?page={page}&page_size={page_size}{filters}"))
    };
    let start = (page - 1) * page_size;
    Json(json!({
        "count": found.len(),
        "num_pages": num_pages,
        "current_page": page,
        "start": start,
        "next": if page < num_pages { link(page + 1) } else { Value::Null },
        "previous": if page > 1 { link(page - 1) } else { Value::Null },
        "results": found.into_iter().skip(start).take(page_size).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn get_entitlement(State(state): State<Arc<LmsState>>, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    if let Err(refused) = authenticate(&state, &headers, Accepts::JwtOnly) {
        return refused;
    }
    match state.entitlement(&uuid) {
        Some(entitlement) => Json(entitlement_json(&uuid, &entitlement)).into_response(),
        None => detail(StatusCode::NOT_FOUND, "Not found."),
    }
}

async fn revoke_entitlement(State(state): State<Arc<LmsState>>, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    if let Err(refused) = authenticate(&state, &headers, Accepts::JwtOnly) {
        return refused;
    }
    if state.revoke_entitlement(&uuid) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        detail(StatusCode::NOT_FOUND, "Not found.")
    }
}
