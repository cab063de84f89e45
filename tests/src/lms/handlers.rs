//! The stand-in's HTTP endpoints.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde_json::{Value, json};

use super::state::{Entitlement, LmsState, RecordedRequest, Reply};

pub(super) fn router(state: Arc<LmsState>) -> Router {
    Router::new()
        .route("/api/enrollment/v1/enrollment", post(enrollment))
        .route("/api/entitlements/v1/entitlements/", post(create_entitlement))
        .route("/api/entitlements/v1/entitlements/{uuid}/", delete(revoke_entitlement))
        .with_state(state)
}

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if message.is_empty() {
        return status.into_response();
    }
    (status, axum::Json(json!({ "message": message }))).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_string)
}

/// Records the request, applies the switches and checks the API key.
/// `Err` is the answer to give instead of the normal one.
async fn admit(state: &LmsState, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    state.record(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        api_key: header(headers, "x-edx-api-key"),
        idempotency_key: header(headers, "idempotency-key"),
        body: json.clone(),
    });
    let (failure, delay, hang) = state.misbehaviour();
    if hang {
        std::future::pending::<()>().await;
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(Reply { status, message }) = failure {
        return Err(error(status, &message));
    }
    if header(headers, "x-edx-api-key").as_deref() != Some(state.api_key.as_str()) {
        return Err(error(401, "Authentication credentials were not provided or are invalid."));
    }
    // A key that succeeded before gets the same answer, and nothing is done
    // again: what a retry after a lost answer relies on.
    if let Some(key) = header(headers, "idempotency-key")
        && let Some((status, body)) = state.replay(uri.path(), &key)
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        return Err((status, axum::Json(body)).into_response());
    }
    Ok(json)
}

/// Keeps a successful answer for replay to the same Idempotency-Key, then
/// waits the answer delay, if one is set.
async fn remember(state: &LmsState, uri: &Uri, headers: &HeaderMap, status: StatusCode, body: &Value) {
    if let Some(key) = header(headers, "idempotency-key") {
        state.remember(uri.path(), &key, status.as_u16(), body.clone());
    }
    if let Some(delay) = state.answer_delay() {
        tokio::time::sleep(delay).await;
    }
}

fn text<'a>(json: &'a Value, pointer: &str) -> Option<&'a str> {
    json.pointer(pointer).and_then(Value::as_str)
}

async fn enrollment(State(state): State<Arc<LmsState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let json = match admit(&state, &method, &uri, &headers, &body).await {
        Ok(json) => json,
        Err(answer) => return answer,
    };
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
        state.enroll(user, course_id, mode, header(&headers, "idempotency-key").as_deref());
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
    remember(&state, &uri, &headers, StatusCode::OK, &record).await;
    (StatusCode::OK, axum::Json(record)).into_response()
}

async fn create_entitlement(State(state): State<Arc<LmsState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let json = match admit(&state, &method, &uri, &headers, &body).await {
        Ok(json) => json,
        Err(answer) => return answer,
    };
    let (Some(user), Some(course_uuid), Some(order_number)) =
        (text(&json, "/user"), text(&json, "/course_uuid"), text(&json, "/order_number"))
    else {
        return error(400, "user, course_uuid and order_number are required");
    };
    let entitlement = Entitlement {
        user: user.to_string(),
        course_uuid: course_uuid.to_string(),
        mode: text(&json, "/mode").unwrap_or("").to_string(),
        order_number: order_number.to_string(),
        revoked: false,
    };
    let idempotency_key = header(&headers, "idempotency-key");
    match state.create_entitlement(entitlement, idempotency_key.as_deref()) {
        Some(uuid) => {
            let record = json!({
                "uuid": uuid,
                "user": user,
                "course_uuid": course_uuid,
                "mode": text(&json, "/mode"),
                "order_number": order_number,
            });
            remember(&state, &uri, &headers, StatusCode::CREATED, &record).await;
            (StatusCode::CREATED, axum::Json(record)).into_response()
        }
        None => error(
            400,
            &format!("An entitlement for course {course_uuid} and order {order_number} already exists."),
        ),
    }
}

async fn revoke_entitlement(
    State(state): State<Arc<LmsState>>,
    Path(uuid): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(answer) = admit(&state, &method, &uri, &headers, &body).await {
        return answer;
    }
    if state.revoke_entitlement(&uuid) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(404, "Not found.")
    }
}
