//! `/products`: the catalog.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::json::ApiJson;
use super::{ApiError, AppState, Caller};
use crate::services::{CatalogProduct, NewProduct};

pub fn router() -> Router<AppState> {
    Router::new().route("/products", get(list_products).post(upsert_product))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub sku: String,
    pub product_type: String,
    pub title: String,
    pub price: String,
    pub currency: String,
    pub attributes: BTreeMap<String, String>,
}

fn view(product: CatalogProduct) -> ProductView {
    ProductView {
        price: product.price.to_decimal_string(),
        currency: product.price.currency.code().to_string(),
        sku: product.sku,
        product_type: product.product_type,
        title: product.title,
        attributes: product.attributes,
    }
}

#[utoipa::path(get, path = "/api/v1/products", responses((status = 200, body = [ProductView])), security(("bearer" = [])))]
async fn list_products(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<ProductView>>, ApiError> {
    Ok(Json(state.services.catalog.products().await?.into_iter().map(view).collect()))
}

/// Creates a product or replaces the one with the same sku.
#[utoipa::path(post, path = "/api/v1/products", request_body = NewProduct,
    responses((status = 201, body = ProductView), (status = 422)), security(("bearer" = [])))]
async fn upsert_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewProduct>,
) -> Result<(StatusCode, Json<ProductView>), ApiError> {
    caller.require_admin()?;
    let product = state.services.catalog.upsert_product(input).await?;
    Ok((StatusCode::CREATED, Json(view(product))))
}
