//! `/products`: the catalog.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::ApiJson;
use super::{Admin, ApiError, AppState, Caller};
use crate::services::{CatalogProduct, NewProduct};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_products, upsert_product))
}

/// A product of the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    #[schema(example = "SEAT-DEMOX-VERIFIED")]
    pub sku: String,
    #[schema(example = "Seat")]
    pub product_type: String,
    pub title: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "49.00")]
    pub price: String,
    #[schema(value_type = crate::model::Currency)]
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

/// The catalog.
#[utoipa::path(get, path = "/api/v1/products", tag = "products",
    responses((status = 200, description = "Every product", body = [ProductView])), security(("bearer" = [])))]
async fn list_products(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<ProductView>>, ApiError> {
    Ok(Json(state.services.catalog.products().await?.into_iter().map(view).collect()))
}

/// Creates a product or replaces the one with the same sku.
#[utoipa::path(post, path = "/api/v1/products", tag = "products",
    request_body(content = NewProduct, example = json!({
        "sku": "SEAT-DEMOX-VERIFIED", "product_type": "Seat", "title": "Verified seat in DemoX",
        "price": "49.00", "currency": "USD", "attributes": {"course_key": "course-v1:edX+DemoX+Demo", "seat_type": "verified"}
    })),
    responses((status = 201, description = "Created or replaced", body = ProductView),
        (status = 403, description = "Needs an admin token"),
        (status = 422, description = "A field is wrong")),
    security(("bearer" = [])))]
async fn upsert_product(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(input): ApiJson<NewProduct>,
) -> Result<(StatusCode, Json<ProductView>), ApiError> {
    let product = state.services.catalog.upsert_product(input).await?;
    Ok((StatusCode::CREATED, Json(view(product))))
}
