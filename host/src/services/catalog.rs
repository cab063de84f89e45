//! The catalog: products that baskets refer to by sku.

use super::OrderError;
use crate::model::{Currency, Money};
use crate::storage::{self, CatalogProduct, Database};

/// A product to create or replace, as given (price as a decimal string):
/// the same shape as a `[[products]]` entry of the settings.
pub use crate::settings::ProductSettings as NewProduct;

impl NewProduct {
    fn validate(self) -> Result<CatalogProduct, OrderError> {
        super::validate::text("sku", &self.sku, super::validate::MAX_NAME_CHARS)?;
        if self.sku.trim().is_empty() {
            return Err(OrderError::invalid("sku", "must not be empty"));
        }
        super::validate::text("product_type", &self.product_type, super::validate::MAX_NAME_CHARS)?;
        if self.product_type.trim().is_empty() {
            return Err(OrderError::invalid("product_type", "must not be empty"));
        }
        super::validate::text("title", &self.title, 255)?;
        for (key, value) in &self.attributes {
            super::validate::text(&format!("attributes.{key}"), value, 1_024)?;
        }
        let currency: Currency = self
            .currency
            .parse()
            .map_err(|error: crate::model::MoneyError| OrderError::invalid("currency", error.to_string()))?;
        let price = Money::parse(&self.price, currency).map_err(|error| OrderError::invalid("price", error.to_string()))?;
        if price.minor_units < 0 {
            return Err(OrderError::invalid("price", "must not be negative"));
        }
        Ok(CatalogProduct {
            sku: self.sku,
            product_type: self.product_type,
            title: self.title,
            price,
            attributes: self.attributes,
        })
    }
}

/// Reads and writes the catalog.
#[derive(Clone)]
pub struct CatalogService {
    db: Database,
}

impl CatalogService {
    pub fn new(db: Database) -> CatalogService {
        CatalogService { db }
    }

    /// Creates or replaces a product.
    pub async fn upsert_product(&self, product: NewProduct) -> Result<CatalogProduct, OrderError> {
        let product = product.validate()?;
        let mut transaction = self.db.begin_write().await?;
        storage::upsert_product(&mut transaction, &product).await?;
        transaction.commit().await?;
        Ok(product)
    }

    /// Upserts the `[[products]]` of the settings (the demo catalog).
    pub async fn seed_products(&self, products: &[NewProduct]) -> Result<(), OrderError> {
        for (index, product) in products.iter().enumerate() {
            self.upsert_product(product.clone()).await.map_err(|error| match error {
                OrderError::Invalid { field, message } => OrderError::invalid(format!("products[{index}].{field}"), message),
                other => other,
            })?;
        }
        Ok(())
    }

    pub async fn products(&self) -> Result<Vec<CatalogProduct>, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::list_products(&mut connection).await?)
    }
}
