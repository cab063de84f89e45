//! `commerce:fulfillment/config`: the module's own `config` table.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::runtime::bindings::config::Host;

/// The module's config table, flattened to strings once at load.
#[derive(Clone, Debug, Default)]
pub struct ConfigCtx(Arc<BTreeMap<String, String>>);

impl ConfigCtx {
    /// Strings pass as they are; numbers, booleans and dates as their TOML
    /// text; arrays and tables as JSON (see wit/config.wit).
    pub fn from_table(table: &toml::Table) -> ConfigCtx {
        let values = table
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    toml::Value::String(text) => text.clone(),
                    toml::Value::Integer(number) => number.to_string(),
                    toml::Value::Float(number) => number.to_string(),
                    toml::Value::Boolean(flag) => flag.to_string(),
                    toml::Value::Datetime(datetime) => datetime.to_string(),
                    toml::Value::Array(_) | toml::Value::Table(_) => {
                        serde_json::to_string(value).unwrap_or_default()
                    }
                };
                (key.clone(), text)
            })
            .collect();
        ConfigCtx(Arc::new(values))
    }
}

impl Host for ConfigCtx {
    fn get(&mut self, key: String) -> Option<String> {
        self.0.get(&key).cloned()
    }

    fn get_all(&mut self) -> Vec<(String, String)> {
        self.0.iter().map(|(key, value)| (key.clone(), value.clone())).collect()
    }
}
