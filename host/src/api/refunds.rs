//! `/refunds`: create, then approve or deny.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, AppState, Caller};
use crate::services::{Processed, RefundAction, RefundRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/refunds", post(create_refund))
        .route("/refunds/{id}", get(get_refund))
        .route("/refunds/{id}/process", put(process_refund))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    pub order_number: String,
    /// Lines of the order to refund.
    pub line_ids: Vec<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessRefund {
    pub action: RefundAction,
}

/// A refund. Statuses: Open, Denied, Payment Refund Error, Payment Refunded,
/// Revocation Error, Complete.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView {
    pub id: i64,
    pub order_number: String,
    pub status: String,
    pub total: String,
    pub currency: String,
    /// none, intended (recorded; the processor is being asked), done, failed.
    pub credit: String,
    /// The processor's reference of the credit, once done.
    pub credit_reference: Option<String>,
    pub lines: Vec<RefundLineView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundLineView {
    pub line_id: u64,
    /// Open, Denied, Revocation Error or Complete.
    pub status: String,
    pub amount: String,
    /// Why revocation failed, or the module's note.
    pub reason: Option<String>,
}

fn view(refund: &RefundRecord) -> RefundView {
    let decimal = |minor_units: i64| match refund.currency.parse() {
        Ok(currency) => crate::model::Money { minor_units, currency }.to_decimal_string(),
        Err(_) => minor_units.to_string(),
    };
    RefundView {
        id: refund.id,
        order_number: refund.order_number.clone(),
        status: refund.status.to_string(),
        total: decimal(refund.total_minor),
        currency: refund.currency.clone(),
        credit: refund.credit.as_str().to_string(),
        credit_reference: refund.credit_reference.clone(),
        lines: refund
            .lines
            .iter()
            .map(|line| RefundLineView {
                line_id: line.line_id,
                status: line.status.to_string(),
                amount: decimal(line.amount_minor),
                reason: line.reason.clone(),
            })
            .collect(),
    }
}

#[utoipa::path(post, path = "/api/v1/refunds", request_body = NewRefund,
    responses((status = 201, body = RefundView), (status = 409), (status = 422)), security(("bearer" = [])))]
async fn create_refund(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewRefund>,
) -> Result<(StatusCode, Json<RefundView>), ApiError> {
    caller.require_admin()?;
    let refund = state.services.refunds.create_refund(&caller.scope, &input.order_number, &input.line_ids).await?;
    Ok((StatusCode::CREATED, Json(view(&refund))))
}

#[utoipa::path(get, path = "/api/v1/refunds/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = RefundView), (status = 404)), security(("bearer" = [])))]
async fn get_refund(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> Result<Json<RefundView>, ApiError> {
    caller.require_admin()?;
    Ok(Json(view(&state.services.refunds.refund(&caller.scope, id).await?)))
}

/// Approves (`approve`: credit, then revoke; `approve_payment_only`: credit
/// only) or denies a refund. The credit and revocations run as the refund's
/// job, in a task the request cannot drop: 200 with the refund when they
/// ended within `[fulfillment] sync_wait_ms`, 202 with the refund as it
/// stands when not (or when another request is carrying them out).
/// Repeating a decision already carried out answers 200 and changes nothing.
#[utoipa::path(put, path = "/api/v1/refunds/{id}/process", params(("id" = i64, Path)), request_body = ProcessRefund,
    responses((status = 200, body = RefundView), (status = 202, body = RefundView), (status = 404), (status = 409)),
    security(("bearer" = [])))]
async fn process_refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<ProcessRefund>,
) -> Result<(StatusCode, Json<RefundView>), ApiError> {
    caller.require_admin()?;
    let services = &state.services;
    let status = match services.refunds.process(&caller.scope, id, input.action).await? {
        Processed::Settled(_) => StatusCode::OK,
        Processed::InProgress(_) => StatusCode::ACCEPTED,
        Processed::Run(job) => {
            if services.executor.start(job).stored_within(services.sync_wait()).await {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            }
        }
    };
    Ok((status, Json(view(&services.refunds.refund(&caller.scope, id).await?))))
}
