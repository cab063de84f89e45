//! One module's store and instance for one order, and the typed calls into it.

use std::collections::BTreeMap;

use wasmtime::{Engine, Store};

use super::bindings::{FulfillmentModule, FulfillmentModulePre, types as wit};
use super::module::{LoadedModule, ModuleInfo};
use super::state::HostState;
use super::{ModuleFault, convert};
use crate::model::{Line, LineId, LineStatus, Order};

/// What a module answered for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineResult {
    Complete {
        /// To merge into the line's attributes.
        attributes: BTreeMap<String, String>,
        note: Option<String>,
    },
    Failed {
        /// One of the four error statuses.
        status: LineStatus,
        message: String,
    },
}

/// What a module answered to `revoke-line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeResult {
    Revoked { note: Option<String> },
    NotRevoked { reason: String },
}

/// A fresh instance of a module. Dropping it drops the store and everything
/// the module allocated; nothing carries over to the next order. After a
/// fault the instance must not be entered again, so every call consumes the
/// session on error.
pub struct ModuleSession<'m> {
    module: &'m LoadedModule,
    store: Store<HostState>,
    bindings: FulfillmentModule,
    /// The order as WIT, converted once per session.
    order: Option<wit::Order>,
}

impl<'m> ModuleSession<'m> {
    pub(super) async fn start(
        module: &'m LoadedModule,
        engine: &Engine,
        pre: &FulfillmentModulePre<HostState>,
        state: HostState,
    ) -> Result<ModuleSession<'m>, ModuleFault> {
        let mut store = Store::new(engine, state);
        match pre.instantiate_async(&mut store).await {
            Ok(bindings) => Ok(ModuleSession {
                module,
                store,
                bindings,
                order: None,
            }),
            Err(error) => Err(ModuleFault::from_error(
                module.name(),
                "instantiate",
                &error,
                &store.data().stderr_text(),
            )),
        }
    }

    /// The module this session runs.
    pub fn module(&self) -> &'m LoadedModule {
        self.module
    }

    fn fault(&self, call: &'static str, error: &wasmtime::Error) -> ModuleFault {
        ModuleFault::from_error(self.module.name(), call, error, &self.store.data().stderr_text())
    }

    fn wit_order(&mut self, order: &Order) -> wit::Order {
        match &self.order {
            Some(converted) if converted.number == order.number => converted.clone(),
            _ => {
                let converted = convert::order(order);
                self.order = Some(converted.clone());
                converted
            }
        }
    }

    pub(super) async fn describe(&mut self) -> Result<ModuleInfo, ModuleFault> {
        let info = self
            .bindings
            .call_describe(&mut self.store)
            .await
            .map_err(|error| self.fault("describe", &error))?;
        Ok(ModuleInfo {
            name: info.name,
            version: info.version,
            product_types: info.product_types,
        })
    }

    /// Whether the module claims `line`.
    pub async fn supports_line(&mut self, order: &Order, line: &Line) -> Result<bool, ModuleFault> {
        let wit_order = self.wit_order(order);
        let wit_line = convert::line(order, line);
        self.bindings
            .call_supports_line(&mut self.store, &wit_order, &wit_line)
            .await
            .map_err(|error| self.fault("supports-line", &error))
    }

    /// Fulfills `lines`; returns what the module answered, line id by line
    /// id, exactly as it answered (the caller checks it against `lines`).
    pub async fn fulfill_product(
        &mut self,
        order: &Order,
        lines: &[&Line],
    ) -> Result<Vec<(LineId, LineResult)>, ModuleFault> {
        let wit_order = self.wit_order(order);
        let wit_lines: Vec<wit::Line> = lines.iter().map(|line| convert::line(order, line)).collect();
        let outcomes = self
            .bindings
            .call_fulfill_product(&mut self.store, &wit_order, &wit_lines, order.email_opt_in)
            .await
            .map_err(|error| self.fault("fulfill-product", &error))?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                let result = match outcome.outcome {
                    wit::Outcome::Complete(completion) => LineResult::Complete {
                        attributes: convert::attribute_map(completion.attributes),
                        note: completion.note,
                    },
                    wit::Outcome::Failed(failure) => LineResult::Failed {
                        status: convert::failure_status(failure.kind),
                        message: failure.message,
                    },
                };
                (outcome.line_id, result)
            })
            .collect())
    }

    /// Asks the module to revoke `line`.
    pub async fn revoke_line(&mut self, order: &Order, line: &Line) -> Result<RevokeResult, ModuleFault> {
        let wit_order = self.wit_order(order);
        let wit_line = convert::line(order, line);
        let outcome = self
            .bindings
            .call_revoke_line(&mut self.store, &wit_order, &wit_line)
            .await
            .map_err(|error| self.fault("revoke-line", &error))?;
        Ok(match outcome {
            wit::RevokeOutcome::Revoked(note) => RevokeResult::Revoked { note },
            wit::RevokeOutcome::NotRevoked(reason) => RevokeResult::NotRevoked { reason },
        })
    }
}
