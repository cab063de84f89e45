//! The runtime's metrics, read when they are encoded: each module's calls
//! and faults (its atomic [`ModuleStats`](crate::runtime::ModuleStats)),
//! its circuit breaker and its orders in flight.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::runtime::{ModuleFunction, Runtime};

/// Encodes the modules of one runtime at each scrape.
pub(super) struct RuntimeCollector {
    runtime: Arc<Runtime>,
}

impl RuntimeCollector {
    pub(super) fn new(runtime: Arc<Runtime>) -> RuntimeCollector {
        RuntimeCollector { runtime }
    }
}

impl fmt::Debug for RuntimeCollector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RuntimeCollector")
            .field("modules", &self.runtime.modules().len())
            .finish()
    }
}

// Help texts end with a full stop, as the registry writes those it holds.
impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let modules = self.runtime.modules();
        {
            let mut metric = encoder.encode_descriptor(
                "module_calls",
                "Calls into a module by function (instantiate, describe, supports-lines, 1.0 modules' supports-line, fulfill-product, revoke-line).",
                None,
                MetricType::Counter,
            )?;
            for module in modules {
                for function in ModuleFunction::ALL {
                    let calls = module.stats().function(function).calls;
                    let labels = [("module", module.name()), ("function", function.as_str())];
                    metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&calls, None)?;
                }
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "module_failures",
                "Module calls that faulted, by kind (trap, out-of-memory, timeout, no-slot, cpu-time, fuel, output-too-large, error).",
                None,
                MetricType::Counter,
            )?;
            for module in modules {
                for (cause, count) in module.stats().faults() {
                    let labels = [("module", module.name()), ("kind", cause.as_str())];
                    metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&count, None)?;
                }
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "module_call_duration",
                "Duration of module calls by function.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for module in modules {
                for function in ModuleFunction::ALL {
                    let calls = module.stats().function(function);
                    let labels = [("module", module.name()), ("function", function.as_str())];
                    metric
                        .encode_family(&labels)?
                        .encode_histogram::<NoLabelSet>(calls.sum_seconds, calls.calls, &calls.buckets, None)?;
                }
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "module_circuit_breaker_state",
                "A module's circuit breaker: 0 closed, 1 half-open, 2 open.",
                None,
                MetricType::Gauge,
            )?;
            for module in modules {
                let state = module.breaker().state().gauge_value();
                metric.encode_family(&[("module", module.name())])?.encode_gauge(&state)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "module_in_flight",
            "Orders a module is working on now.",
            None,
            MetricType::Gauge,
        )?;
        for module in modules {
            let in_flight = i64::try_from(module.in_flight()).unwrap_or(i64::MAX);
            metric.encode_family(&[("module", module.name())])?.encode_gauge(&in_flight)?;
        }
        Ok(())
    }
}
