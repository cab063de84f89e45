//! One module's store and instance for one order, and the typed calls into it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Engine, Store};

use super::bindings::{v1_0, v1_1};
use super::fault::FaultCause;
use super::meter::CallMeter;
use super::module::{LoadedModule, ModuleInfo, ModulePre};
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

/// One instance's exports, by the contract version the module was built
/// against, with the order as that version's record (converted once per
/// session, on first use).
pub(super) enum Exports {
    V1_0 {
        exports: v1_0::FulfillmentModule,
        order: Option<Box<v1_0::types::Order>>,
    },
    V1_1 {
        exports: v1_1::FulfillmentModule,
        order: Option<Box<v1_1::types::Order>>,
    },
    /// The native baseline's module (no instance; runtime/native).
    #[cfg(feature = "native-baseline")]
    Native(Arc<dyn super::native::NativeModule>),
}

/// The order converted for an instance's version (once: a session serves one
/// order).
macro_rules! converted_order {
    ($slot:expr, $order:expr, $convert:path) => {{
        if $slot.as_ref().is_some_and(|converted| converted.number != $order.number) {
            *$slot = None;
        }
        &**$slot.get_or_insert_with(|| Box::new($convert($order)))
    }};
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
    exports: Exports,
    meter: Arc<CallMeter>,
    _slot: OwnedSemaphorePermit,
}

impl<'m> ModuleSession<'m> {
    pub(super) async fn start(
        module: &'m LoadedModule,
        engine: &Engine,
        pre: &ModulePre,
        state: HostState,
        slot: OwnedSemaphorePermit,
    ) -> Result<ModuleSession<'m>, ModuleFault> {
        let limits = module.limits();
        let meter = state.meter.clone();
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|store| store.data().meter.on_epoch());
        store.set_epoch_deadline(1);
        let instantiated = match refuel(&mut store, limits, module.engine_meters_fuel()) {
            Ok(()) => meter.run(limits.wall(), pre.instantiate(&mut store)).await,
            Err(error) => Err(error),
        };
        match instantiated {
            Ok(exports) => Ok(ModuleSession {
                module,
                store,
                exports,
                meter,
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
        refuel(&mut self.store, self.module.limits(), self.module.engine_meters_fuel()).map_err(|error| self.fault(call, &error))
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
        let wall = self.module.limits().wall();
        let answer = match &self.exports {
            Exports::V1_0 { exports, .. } => self
                .meter
                .run(wall, exports.call_describe(&mut self.store))
                .await
                .map(convert::v1_0::module_info),
            Exports::V1_1 { exports, .. } => self
                .meter
                .run(wall, exports.call_describe(&mut self.store))
                .await
                .map(convert::v1_1::module_info),
            #[cfg(feature = "native-baseline")]
            Exports::Native(native) => Ok((native.describe(), 0)),
        };
        let (info, size) = answer.map_err(|error| self.fault("describe", &error))?;
        self.check_output("describe", size)?;
        Ok(info)
    }

    /// Which of `lines` the module claims: one answer per line, in order.
    ///
    /// A 1.1 module answers for all of them in one `supports-lines` call (the
    /// order is lowered once); a 1.0 module is asked `supports-line` line by
    /// line. On a fault, the answers given before it come back with it (a
    /// 1.0 module may have claimed some lines first; a 1.1 module none).
    pub async fn supports_lines(&mut self, order: &Order, lines: &[&Line]) -> Result<Vec<bool>, (Vec<bool>, ModuleFault)> {
        #[cfg(feature = "native-baseline")]
        if let Exports::Native(native) = &self.exports {
            let started = Instant::now();
            let answers = native.supports_lines(order, lines);
            return self.recorded(ModuleFunction::SupportsLines, started, Ok(answers)).map_err(|fault| (Vec::new(), fault));
        }
        if let Exports::V1_1 { .. } = self.exports {
            let started = Instant::now();
            let result = self.call_supports_lines(order, lines).await;
            return self.recorded(ModuleFunction::SupportsLines, started, result).map_err(|fault| (Vec::new(), fault));
        }
        let mut answers = Vec::with_capacity(lines.len());
        for line in lines {
            let started = Instant::now();
            let result = self.call_supports_line(order, line).await;
            match self.recorded(ModuleFunction::SupportsLine, started, result) {
                Ok(answer) => answers.push(answer),
                Err(fault) => return Err((answers, fault)),
            }
        }
        Ok(answers)
    }

    async fn call_supports_lines(&mut self, order: &Order, lines: &[&Line]) -> Result<Vec<bool>, ModuleFault> {
        const CALL: &str = "supports-lines";
        self.refuel(CALL)?;
        let wall = self.module.limits().wall();
        let Exports::V1_1 { exports, order: converted } = &mut self.exports else {
            unreachable!("supports-lines is called on 1.1 instances only")
        };
        let wit_order = converted_order!(converted, order, convert::v1_1::order);
        let wit_lines: Vec<_> = lines.iter().map(|line| convert::v1_1::line(order, line)).collect();
        let answers = self
            .meter
            .run(wall, exports.call_supports_lines(&mut self.store, wit_order, &wit_lines))
            .await
            .map_err(|error| fault(self.module, &self.store, CALL, &error))?;
        self.check_output(CALL, answers.len())?;
        if answers.len() != lines.len() {
            let reason = format!(
                "answered {} claims for {} lines; supports-lines must answer once per line",
                answers.len(),
                lines.len()
            );
            return Err(ModuleFault::new(self.module.name(), CALL, FaultCause::Error, reason));
        }
        Ok(answers)
    }

    async fn call_supports_line(&mut self, order: &Order, line: &Line) -> Result<bool, ModuleFault> {
        const CALL: &str = "supports-line";
        self.refuel(CALL)?;
        let wall = self.module.limits().wall();
        let Exports::V1_0 { exports, order: converted } = &mut self.exports else {
            unreachable!("supports-line is called on 1.0 instances only")
        };
        let wit_order = converted_order!(converted, order, convert::v1_0::order);
        let wit_line = convert::v1_0::line(order, line);
        self.meter
            .run(wall, exports.call_supports_line(&mut self.store, wit_order, &wit_line))
            .await
            .map_err(|error| fault(self.module, &self.store, CALL, &error))
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
        const CALL: &str = "fulfill-product";
        self.refuel(CALL)?;
        let wall = self.module.limits().wall();
        let answer = match &mut self.exports {
            Exports::V1_0 { exports, order: converted } => {
                let wit_order = converted_order!(converted, order, convert::v1_0::order);
                let wit_lines: Vec<_> = lines.iter().map(|line| convert::v1_0::line(order, line)).collect();
                let call = exports.call_fulfill_product(&mut self.store, wit_order, &wit_lines, order.email_opt_in);
                self.meter.run(wall, call).await.map(|outcomes| {
                    let size = outcomes.iter().map(convert::v1_0::outcome_size).sum::<usize>();
                    (outcomes.into_iter().map(convert::v1_0::line_result).collect::<Vec<_>>(), size)
                })
            }
            Exports::V1_1 { exports, order: converted } => {
                let wit_order = converted_order!(converted, order, convert::v1_1::order);
                let wit_lines: Vec<_> = lines.iter().map(|line| convert::v1_1::line(order, line)).collect();
                let call = exports.call_fulfill_product(&mut self.store, wit_order, &wit_lines, order.email_opt_in);
                self.meter.run(wall, call).await.map(|outcomes| {
                    let size = outcomes.iter().map(convert::v1_1::outcome_size).sum::<usize>();
                    (outcomes.into_iter().map(convert::v1_1::line_result).collect::<Vec<_>>(), size)
                })
            }
            #[cfg(feature = "native-baseline")]
            Exports::Native(native) => {
                let native = native.clone();
                let host = self.store.data_mut();
                let call = async move { Ok::<_, wasmtime::Error>(native.fulfill_product(host, order, lines).await) };
                self.meter.run(wall, call).await.map(|results| (results, 0))
            }
        };
        let (results, size) = answer.map_err(|error| self.fault(CALL, &error))?;
        self.check_output(CALL, size)?;
        Ok(results)
    }

    /// Asks the module to revoke `line` for refund `refund_id`.
    pub async fn revoke_line(&mut self, order: &Order, line: &Line, refund_id: u64) -> Result<RevokeResult, ModuleFault> {
        let started = Instant::now();
        let result = self.call_revoke_line(order, line, refund_id).await;
        self.recorded(ModuleFunction::RevokeLine, started, result)
    }

    async fn call_revoke_line(&mut self, order: &Order, line: &Line, refund_id: u64) -> Result<RevokeResult, ModuleFault> {
        const CALL: &str = "revoke-line";
        self.refuel(CALL)?;
        let wall = self.module.limits().wall();
        let answer = match &mut self.exports {
            Exports::V1_0 { exports, order: converted } => {
                let wit_order = converted_order!(converted, order, convert::v1_0::order);
                let wit_line = convert::v1_0::line(order, line);
                let call = exports.call_revoke_line(&mut self.store, wit_order, &wit_line);
                self.meter.run(wall, call).await.map(convert::v1_0::revoke_result)
            }
            Exports::V1_1 { exports, order: converted } => {
                let wit_order = converted_order!(converted, order, convert::v1_1::order);
                let wit_line = convert::v1_1::line(order, line);
                let refund = convert::v1_1::revocation(order, line, refund_id);
                let call = exports.call_revoke_line(&mut self.store, wit_order, &wit_line, &refund);
                self.meter.run(wall, call).await.map(convert::v1_1::revoke_result)
            }
            #[cfg(feature = "native-baseline")]
            Exports::Native(native) => Ok((native.revoke_line(line), 0)),
        };
        let (result, size) = answer.map_err(|error| self.fault(CALL, &error))?;
        self.check_output(CALL, size)?;
        Ok(result)
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
/// gets all it could use. (Whether the engine meters fuel is known from its
/// settings: asking the store, `get_fuel`, would make an error, with a
/// backtrace when RUST_BACKTRACE is set, on every call of every module of an
/// engine without fuel.)
fn refuel(store: &mut Store<HostState>, limits: &ModuleLimits, engine_meters_fuel: bool) -> wasmtime::Result<()> {
    match limits.fuel {
        Some(fuel) => store.set_fuel(fuel.get()),
        None if engine_meters_fuel => store.set_fuel(u64::MAX),
        None => Ok(()),
    }
}
