//! What each module's calls did since the host started: how many calls of
//! each export, how long they took (a histogram), and the faults by cause.
//!
//! The runtime records; it knows nothing of Prometheus or HTTP. Every
//! counter is an atomic owned by the module ([`ModuleStats`]), so recording a
//! call is a few relaxed atomic additions: no lock, no allocation, no
//! formatting, nothing on the path of a call that went well but the clock
//! read (issue 13). `crate::metrics` reads the counters at scrape time and
//! encodes them; `GET /api/v1/modules` shows their summary ([`CallStats`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::fault::{FaultCause, ModuleFault};

/// The upper bounds (seconds) of the call-duration histogram's buckets,
/// from a `supports-line` answered in well under a millisecond to a
/// `fulfill-product` that waits its HTTP time-outs; a last, unbounded
/// bucket (`+Inf`) takes the rest.
pub const CALL_SECONDS_BUCKETS: [f64; 16] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One export of the world a module is called through, and the
/// instantiation of its store (which runs its start functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModuleFunction {
    /// A fresh store and instance for an order, including the wait for one
    /// of the module's in-flight slots.
    Instantiate,
    Describe,
    /// 1.0's claim, once per line.
    SupportsLine,
    /// 1.1's claim, once per order.
    SupportsLines,
    FulfillProduct,
    RevokeLine,
}

impl ModuleFunction {
    pub const ALL: [ModuleFunction; 6] = [
        ModuleFunction::Instantiate,
        ModuleFunction::Describe,
        ModuleFunction::SupportsLine,
        ModuleFunction::SupportsLines,
        ModuleFunction::FulfillProduct,
        ModuleFunction::RevokeLine,
    ];

    /// The name of the export in the WIT world (`"instantiate"` for the
    /// instantiation): the `function` label of the metrics, the `call` of a
    /// fault.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleFunction::Instantiate => "instantiate",
            ModuleFunction::Describe => "describe",
            ModuleFunction::SupportsLine => "supports-line",
            ModuleFunction::SupportsLines => "supports-lines",
            ModuleFunction::FulfillProduct => "fulfill-product",
            ModuleFunction::RevokeLine => "revoke-line",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A module's calls since start, as `GET /api/v1/modules` (and the
/// dashboard) shows them. Every call of every function counts, the
/// instantiation of a store included.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallStats {
    /// Calls made (instantiations, `describe`, `supports-line`,
    /// `fulfill-product`, `revoke-line`).
    pub calls: u64,
    /// Calls that ended in a fault (of any kind).
    pub failures: u64,
    /// Faults that were traps: a panic, `unreachable`, a stack overflow, or
    /// running out of memory.
    pub traps: u64,
    /// Faults that were time-outs: the wall-time limit, no free in-flight
    /// slot in time, or the CPU time or fuel budget (the lines get
    /// `Fulfillment Timeout Error`).
    pub timeouts: u64,
    /// The median call time in milliseconds, estimated from the histogram's
    /// buckets the way Prometheus' `histogram_quantile` does (linear within
    /// the bucket it falls in); null before the first call.
    pub p50_ms: Option<f64>,
    /// The 99th percentile, estimated the same way.
    pub p99_ms: Option<f64>,
}

/// One function's calls: a duration histogram (its bucket counts add up to
/// the number of calls).
#[derive(Debug, Default)]
struct FunctionStats {
    /// Not cumulative: bucket `i` counts the calls that took more than bound
    /// `i - 1` and at most bound `i`; the last one counts those over every
    /// bound.
    buckets: [AtomicU64; CALL_SECONDS_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// One function's calls, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSnapshot {
    pub function: ModuleFunction,
    pub calls: u64,
    pub sum_seconds: f64,
    /// `(upper bound in seconds, calls in this bucket)`: not cumulative
    /// (the calls longer than the bound before, and at most this one), the
    /// last bound `f64::INFINITY`, as `prometheus-client` encodes them.
    pub buckets: Vec<(f64, u64)>,
}

/// A module's counters. Shared by all its sessions.
#[derive(Debug, Default)]
pub struct ModuleStats {
    functions: [FunctionStats; ModuleFunction::ALL.len()],
    faults: [AtomicU64; FaultCause::ALL.len()],
}

impl ModuleStats {
    /// Counts one call of `function` that took `elapsed`, and its fault if
    /// it had one.
    pub(super) fn record(&self, function: ModuleFunction, elapsed: Duration, fault: Option<&ModuleFault>) {
        let stats = &self.functions[function.index()];
        let seconds = elapsed.as_secs_f64();
        let bucket = CALL_SECONDS_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(CALL_SECONDS_BUCKETS.len());
        stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        stats
            .sum_nanos
            .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if let Some(fault) = fault {
            self.faults[fault.cause.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The calls of `function` so far.
    pub fn function(&self, function: ModuleFunction) -> FunctionSnapshot {
        let stats = &self.functions[function.index()];
        let counts: Vec<u64> = stats.buckets.iter().map(|count| count.load(Ordering::Relaxed)).collect();
        FunctionSnapshot {
            function,
            calls: counts.iter().sum(),
            sum_seconds: stats.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            buckets: bounds().zip(counts).collect(),
        }
    }

    /// The faults so far, by cause (every cause, zeros included).
    pub fn faults(&self) -> [(FaultCause, u64); FaultCause::ALL.len()] {
        FaultCause::ALL.map(|cause| (cause, self.faults[cause.index()].load(Ordering::Relaxed)))
    }

    /// The summary of every call so far.
    pub fn call_stats(&self) -> CallStats {
        let mut counts = [0u64; CALL_SECONDS_BUCKETS.len() + 1];
        for stats in &self.functions {
            for (total, count) in counts.iter_mut().zip(&stats.buckets) {
                *total += count.load(Ordering::Relaxed);
            }
        }
        let faults = self.faults();
        let count = |wanted: fn(FaultCause) -> bool| faults.iter().filter(|(cause, _)| wanted(*cause)).map(|(_, n)| n).sum();
        let buckets = cumulative(&counts);
        let millis = |quantile| histogram_quantile(quantile, &buckets).map(|seconds| seconds * 1000.0);
        CallStats {
            calls: counts.iter().sum(),
            failures: count(|_| true),
            traps: count(FaultCause::is_trap),
            timeouts: count(FaultCause::is_timeout),
            p50_ms: millis(0.5),
            p99_ms: millis(0.99),
        }
    }
}

/// The buckets' upper bounds, `+Inf` last.
fn bounds() -> impl Iterator<Item = f64> {
    CALL_SECONDS_BUCKETS.iter().copied().chain(std::iter::once(f64::INFINITY))
}

/// `(bound, calls at most that long)` from per-bucket counts.
fn cumulative(counts: &[u64]) -> Vec<(f64, u64)> {
    let mut running = 0;
    bounds()
        .zip(counts)
        .map(|(bound, count)| {
            running += count;
            (bound, running)
        })
        .collect()
}

/// The `quantile` (0..=1) of cumulative `buckets`, as Prometheus'
/// `histogram_quantile` estimates it: the bucket the rank falls in, and a
/// linear interpolation between its bounds (from 0 for the first bucket);
/// in the unbounded last bucket, the highest finite bound. None without
/// observations.
fn histogram_quantile(quantile: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    let total = buckets.last().map(|(_, count)| *count).filter(|total| *total > 0)? as f64;
    let rank = quantile * total;
    let mut lower = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank && count > lower.1 {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let (lower_bound, below) = (lower.0, lower.1 as f64);
            let fraction = (rank - below) / (count as f64 - below);
            return Some(lower_bound + (bound - lower_bound) * fraction);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FaultKind;

    fn fault(cause: FaultCause) -> ModuleFault {
        ModuleFault::new("m", "fulfill-product", cause, "why".into())
    }

    #[test]
    fn calls_fill_the_histogram_and_faults_count_by_cause() {
        let stats = ModuleStats::default();
        stats.record(ModuleFunction::SupportsLine, Duration::from_micros(100), None);
        stats.record(ModuleFunction::FulfillProduct, Duration::from_millis(30), None);
        stats.record(ModuleFunction::FulfillProduct, Duration::from_secs(60), Some(&fault(FaultCause::Timeout)));
        stats.record(ModuleFunction::FulfillProduct, Duration::from_millis(2), Some(&fault(FaultCause::Trap)));
        stats.record(ModuleFunction::FulfillProduct, Duration::from_millis(2), Some(&fault(FaultCause::OutOfMemory)));

        let fulfill = stats.function(ModuleFunction::FulfillProduct);
        assert_eq!(fulfill.calls, 4);
        assert_eq!(fulfill.buckets.last(), Some(&(f64::INFINITY, 1)), "60 s is over every bound");
        assert_eq!(fulfill.buckets.iter().find(|(bound, _)| *bound == 0.0025), Some(&(0.0025, 2)));
        assert_eq!(fulfill.buckets.iter().map(|(_, count)| count).sum::<u64>(), 4);
        assert!((fulfill.sum_seconds - 60.034).abs() < 1e-6, "{}", fulfill.sum_seconds);
        assert_eq!(stats.function(ModuleFunction::SupportsLine).calls, 1);
        assert_eq!(stats.function(ModuleFunction::RevokeLine).calls, 0);

        let summary = stats.call_stats();
        assert_eq!((summary.calls, summary.failures, summary.traps, summary.timeouts), (5, 3, 2, 1));
        assert_eq!(fault(FaultCause::Timeout).kind, FaultKind::TimedOut);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket_as_prometheus_does() {
        // 100 calls: 50 in (0, 0.25 ms], 49 in (0.25, 0.5 ms], 1 over 30 s.
        let mut counts = [0u64; CALL_SECONDS_BUCKETS.len() + 1];
        counts[0] = 50;
        counts[1] = 49;
        counts[CALL_SECONDS_BUCKETS.len()] = 1;
        let buckets = cumulative(&counts);
        assert_eq!(histogram_quantile(0.5, &buckets), Some(0.000_25));
        let p99 = histogram_quantile(0.99, &buckets).expect("observations");
        assert!((p99 - 0.000_5).abs() < 1e-12, "{p99}");
        // The rank in the unbounded bucket: the highest finite bound.
        assert_eq!(histogram_quantile(1.0, &buckets), Some(30.0));
        assert_eq!(histogram_quantile(0.5, &cumulative(&[0; CALL_SECONDS_BUCKETS.len() + 1])), None);
        let half_way = histogram_quantile(0.25, &buckets).expect("observations");
        assert!((half_way - 0.000_125).abs() < 1e-12, "{half_way}");
    }
}
