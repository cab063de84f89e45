//! One module's store and instance for one order, and the typed calls into it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Engine, Store};

use super::bindings::{FulfillmentModule, FulfillmentModulePre, types as wit};
use super::fault::FaultCause;
use super::meter::CallMeter;
use super::module::{LoadedModule, ModuleInfo};
use super::state::HostState;
use super::stats::ModuleFunction;
use super::{ModuleFault, convert};
use crate::settings::ModuleLimits;
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
/// fault the instance must not be entered again (the callers drop the
/// session on error).
///
/// Every call runs under the module's limits: a CPU deadline (epoch
/// interruption), an optional fuel budget, a wall-time limit, the memory and
/// table caps of the store, and a cap on the size of what it returns. The
/// session holds one of the module's in-flight slots until it is dropped.
pub struct ModuleSession<'m> {
    module: &'m LoadedModule,
    store: Store<HostState>,
    bindings: FulfillmentModule,
    meter: Arc<CallMeter>,
    /// The order as WIT, converted once per session.
    order: Option<wit::Order>,
    _slot: OwnedSemaphorePermit,
}

impl<'m> ModuleSession<'m> {
    pub(super) async fn start(
        module: &'m LoadedModule,
        engine: &Engine,
        pre: &FulfillmentModulePre<HostState>,
        state: HostState,
        slot: OwnedSemaphorePermit,
    ) -> Result<ModuleSession<'m>, ModuleFault> {
        let limits = module.limits();
        let meter = state.meter.clone();
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|store| store.data().meter.on_epoch());
        store.set_epoch_deadline(1);
        let instantiated = match refuel(&mut store, limits) {
            Ok(()) => meter.run(limits.wall(), pre.instantiate_async(&mut store)).await,
            Err(error) => Err(error),
        };
        match instantiated {
            Ok(bindings) => Ok(ModuleSession {
                module,
                store,
                bindings,
                meter,
                order: None,
                _slot: slot,
            }),
            Err(error) => Err(fault(module, &store, "instantiate", &error)),
        }
    }

    /// The module this session runs.
    pub fn module(&self) -> &'m LoadedModule {
        self.module
    }

    fn fault(&self, call: &'static str, error: &wasmtime::Error) -> ModuleFault {
        fault(self.module, &self.store, call, error)
    }

    /// Gives the next call its fuel budget.
    fn refuel(&mut self, call: &'static str) -> Result<(), ModuleFault> {
        refuel(&mut self.store, self.module.limits()).map_err(|error| self.fault(call, &error))
    }

    /// Refuses output over the module's `output_bytes`.
    fn check_output(&self, call: &'static str, bytes: usize) -> Result<(), ModuleFault> {
        let limit = self.module.limits().output_bytes.get() as usize;
        if bytes <= limit {
            return Ok(());
        }
        let reason = format!("returned {bytes} bytes of output, over its limit of {limit} bytes (output_bytes); none of it is used");
        Err(ModuleFault::new(self.module.name(), call, FaultCause::OutputTooLarge, reason))
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

    /// Counts a call that started at `started` in the module's statistics.
    fn recorded<T>(&self, function: ModuleFunction, started: Instant, result: Result<T, ModuleFault>) -> Result<T, ModuleFault> {
        self.module.stats().record(function, started.elapsed(), result.as_ref().err());
        result
    }

    pub(super) async fn describe(&mut self) -> Result<ModuleInfo, ModuleFault> {
        let started = Instant::now();
        let result = self.call_describe().await;
        self.recorded(ModuleFunction::Describe, started, result)
    }

    async fn call_describe(&mut self) -> Result<ModuleInfo, ModuleFault> {
        self.refuel("describe")?;
        let info = self
            .meter
            .run(self.module.limits().wall(), self.bindings.call_describe(&mut self.store))
            .await
            .map_err(|error| self.fault("describe", &error))?;
        let size = info.name.len() + info.version.len() + info.product_types.iter().map(String::len).sum::<usize>();
        self.check_output("describe", size)?;
        Ok(ModuleInfo {
            name: info.name,
            version: info.version,
            product_types: info.product_types,
        })
    }

    /// Whether the module claims `line`.
    pub async fn supports_line(&mut self, order: &Order, line: &Line) -> Result<bool, ModuleFault> {
        let started = Instant::now();
        let result = self.call_supports_line(order, line).await;
        self.recorded(ModuleFunction::SupportsLine, started, result)
    }

    async fn call_supports_line(&mut self, order: &Order, line: &Line) -> Result<bool, ModuleFault> {
        self.refuel("supports-line")?;
        let wit_order = self.wit_order(order);
        let wit_line = convert::line(order, line);
        let call = self.bindings.call_supports_line(&mut self.store, &wit_order, &wit_line);
        self.meter
            .run(self.module.limits().wall(), call)
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
        let started = Instant::now();
        let result = self.call_fulfill_product(order, lines).await;
        self.recorded(ModuleFunction::FulfillProduct, started, result)
    }

    async fn call_fulfill_product(
        &mut self,
        order: &Order,
        lines: &[&Line],
    ) -> Result<Vec<(LineId, LineResult)>, ModuleFault> {
        self.refuel("fulfill-product")?;
        let wit_order = self.wit_order(order);
        let wit_lines: Vec<wit::Line> = lines.iter().map(|line| convert::line(order, line)).collect();
        let call = self
            .bindings
            .call_fulfill_product(&mut self.store, &wit_order, &wit_lines, order.email_opt_in);
        let outcomes = self
            .meter
            .run(self.module.limits().wall(), call)
            .await
            .map_err(|error| self.fault("fulfill-product", &error))?;
        self.check_output("fulfill-product", outcomes.iter().map(outcome_size).sum())?;
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
        let started = Instant::now();
        let result = self.call_revoke_line(order, line).await;
        self.recorded(ModuleFunction::RevokeLine, started, result)
    }

    async fn call_revoke_line(&mut self, order: &Order, line: &Line) -> Result<RevokeResult, ModuleFault> {
        self.refuel("revoke-line")?;
        let wit_order = self.wit_order(order);
        let wit_line = convert::line(order, line);
        let call = self.bindings.call_revoke_line(&mut self.store, &wit_order, &wit_line);
        let outcome = self
            .meter
            .run(self.module.limits().wall(), call)
            .await
            .map_err(|error| self.fault("revoke-line", &error))?;
        let size = match &outcome {
            wit::RevokeOutcome::Revoked(note) => note.as_ref().map_or(0, String::len),
            wit::RevokeOutcome::NotRevoked(reason) => reason.len(),
        };
        self.check_output("revoke-line", size)?;
        Ok(match outcome {
            wit::RevokeOutcome::Revoked(note) => RevokeResult::Revoked { note },
            wit::RevokeOutcome::NotRevoked(reason) => RevokeResult::NotRevoked { reason },
        })
    }
}

/// The fault for `error`, with what the store knows about it.
fn fault(module: &LoadedModule, store: &Store<HostState>, call: &'static str, error: &wasmtime::Error) -> ModuleFault {
    let state = store.data();
    ModuleFault::from_error(
        module.name(),
        call,
        error,
        &state.stderr_text(),
        state.limiter.refused(),
        module.limits().fuel.map(|fuel| fuel.get()),
    )
}

/// Sets the store's fuel to the module's budget for one call. On an engine
/// that meters fuel (because some module has a budget), a module without one
/// gets all it could use.
fn refuel(store: &mut Store<HostState>, limits: &ModuleLimits) -> wasmtime::Result<()> {
    let engine_meters_fuel = store.get_fuel().is_ok();
    match limits.fuel {
        Some(fuel) => store.set_fuel(fuel.get()),
        None if engine_meters_fuel => store.set_fuel(u64::MAX),
        None => Ok(()),
    }
}

/// The bytes of one outcome that the host keeps: attributes, note, message.
fn outcome_size(outcome: &wit::LineOutcome) -> usize {
    match &outcome.outcome {
        wit::Outcome::Complete(completion) => {
            completion
                .attributes
                .iter()
                .map(|attribute| attribute.name.len() + attribute.value.len())
                .sum::<usize>()
                + completion.note.as_ref().map_or(0, String::len)
        }
        wit::Outcome::Failed(failure) => failure.message.len(),
    }
}
