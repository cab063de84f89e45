//! The catalog.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use super::{StorageError, placeholders};
use crate::model::{Currency, Money};

/// A product that can be bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProduct {
    pub sku: String,
    pub product_type: String,
    pub title: String,
    pub price: Money,
    pub attributes: BTreeMap<String, String>,
}

/// Creates the product, or replaces the one with the same sku.
pub async fn upsert_product(connection: &mut AnyConnection, product: &CatalogProduct) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO products (sku, product_type, title, price_minor, currency, attributes)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (sku) DO UPDATE SET product_type = excluded.product_type, title = excluded.title,
             price_minor = excluded.price_minor, currency = excluded.currency, attributes = excluded.attributes",
    )
    .bind(&product.sku)
    .bind(&product.product_type)
    .bind(&product.title)
    .bind(product.price.minor_units)
    .bind(product.price.currency.code())
    .bind(to_json(&product.attributes))
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The products of `skus` that exist (one query, whatever the count).
pub async fn get_products(connection: &mut AnyConnection, skus: &[&str]) -> Result<Vec<CatalogProduct>, StorageError> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let query = format!(
        "SELECT sku, product_type, title, price_minor, currency, attributes FROM products WHERE sku IN ({})",
        placeholders(1, skus.len())
    );
    let mut query = sqlx::query_as::<_, ProductRow>(&query);
    for sku in skus {
        query = query.bind(*sku);
    }
    query.fetch_all(&mut *connection).await?.into_iter().map(CatalogProduct::try_from).collect()
}

/// Every product, by sku.
pub async fn list_products(connection: &mut AnyConnection) -> Result<Vec<CatalogProduct>, StorageError> {
    let rows: Vec<ProductRow> =
        sqlx::query_as("SELECT sku, product_type, title, price_minor, currency, attributes FROM products ORDER BY sku")
            .fetch_all(&mut *connection)
            .await?;
    rows.into_iter().map(CatalogProduct::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    sku: String,
    product_type: String,
    title: String,
    price_minor: i64,
    currency: String,
    attributes: String,
}

impl TryFrom<ProductRow> for CatalogProduct {
    type Error = StorageError;

    fn try_from(row: ProductRow) -> Result<CatalogProduct, StorageError> {
        let currency: Currency = row.currency.parse().map_err(|error: crate::model::MoneyError| StorageError::Corrupt {
            table: "products",
            message: error.to_string(),
        })?;
        Ok(CatalogProduct {
            sku: row.sku,
            product_type: row.product_type,
            title: row.title,
            price: Money {
                minor_units: row.price_minor,
                currency,
            },
            attributes: from_json(row.attributes, "products")?,
        })
    }
}

/// A map as JSON text for a TEXT column.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

/// JSON text from a TEXT column.
pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: String, table: &'static str) -> Result<T, StorageError> {
    serde_json::from_str(&text).map_err(|error| StorageError::Corrupt {
        table,
        message: error.to_string(),
    })
}
