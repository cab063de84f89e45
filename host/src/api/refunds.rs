//! `/refunds`: create, then approve or deny.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, AppState, Caller};
use crate::orders::RefundAction;
use crate::storage::RefundRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/refunds", post(create_refund))
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

fn view(order_number: &str, refund: &RefundRecord) -> RefundView {
    let decimal = |minor_units: i64| match refund.currency.parse() {
        Ok(currency) => crate::model::Money { minor_units, currency }.to_decimal_string(),
        Err(_) => minor_units.to_string(),
    };
    RefundView {
        id: refund.id,
        order_number: order_number.to_string(),
        status: refund.status.clone(),
        total: decimal(refund.total_minor),
        currency: refund.currency.clone(),
        lines: refund
            .lines
            .iter()
            .map(|line| RefundLineView {
                line_id: line.line_id,
                status: line.status.clone(),
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
    let refund = state.service.create_refund(&input.order_number, &input.line_ids).await?;
    Ok((StatusCode::CREATED, Json(view(&input.order_number, &refund))))
}

#[utoipa::path(put, path = "/api/v1/refunds/{id}/process", params(("id" = i64, Path)), request_body = ProcessRefund,
    responses((status = 200, body = RefundView), (status = 404), (status = 409)), security(("bearer" = [])))]
async fn process_refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<ProcessRefund>,
) -> Result<Json<RefundView>, ApiError> {
    caller.require_admin()?;
    let (number, refund) = state.service.process_refund(id, input.action).await?;
    Ok(Json(view(&number, &refund)))
}
