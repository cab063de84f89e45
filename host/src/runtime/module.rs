//! One module, compiled and pre-linked once, ready for a store per order.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Component;

use super::bindings::{v1_0, v1_1};
use super::breaker::CircuitBreaker;
use super::engine::Shared;
use super::fault::FaultCause;
use super::host::{ConfigCtx, HttpCtx, HttpPolicy, LogCtx};
use super::limiter::GrowthLimiter;
use super::meter::CallMeter;
use super::session::{Exports, ModuleSession};
use super::stats::{CallStats, ModuleFunction, ModuleStats};
use super::state::HostState;
use super::version::{self, ContractVersion};
use super::{LoadError, ModuleFault};
use crate::settings::{ModuleLimits, ModuleSettings, Sha256Digest};

/// The first bytes of every WebAssembly binary.
const WASM_MAGIC: [u8; 4] = *b"\0asm";
/// The version field of a core module (a component has another).
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// The product type a module declares in `describe` to be offered every
/// line, whatever its product type.
pub const WILDCARD_PRODUCT_TYPE: &str = "*";

/// What a module says of itself (`describe`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModuleInfo {
    pub name: String,
    pub version: String,
    /// The product types it is offered lines of (its lane); `"*"` for all.
    pub product_types: Vec<String>,
}

impl ModuleInfo {
    /// Whether the module declared the wildcard `"*"`: it is offered every line.
    pub fn is_wildcard(&self) -> bool {
        self.product_types.iter().any(|declared| declared == WILDCARD_PRODUCT_TYPE)
    }

    /// Whether a line of `product_type` is in the module's lane: it declared
    /// that product type (exactly, as the catalog spells it) or the wildcard.
    pub fn serves(&self, product_type: &str) -> bool {
        self.product_types
            .iter()
            .any(|declared| declared == product_type || declared == WILDCARD_PRODUCT_TYPE)
    }

    /// The declared product types for people: "Seat, Donation", "* (every
    /// product type)", or "(none)".
    pub fn lane(&self) -> String {
        if self.product_types.is_empty() {
            return "(none)".into();
        }
        self.product_types
            .iter()
            .map(|declared| {
                if declared == WILDCARD_PRODUCT_TYPE {
                    "* (every product type)".to_string()
                } else {
                    declared.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A module ready to run: compiled, checked against the world, pre-linked.
pub struct LoadedModule {
    name: String,
    path: PathBuf,
    digest: Sha256Digest,
    info: ModuleInfo,
    imports: Vec<String>,
    pre: ModulePre,
    config: ConfigCtx,
    http_policy: Arc<HttpPolicy>,
    limits: ModuleLimits,
    /// One permit per order the module may work on at once (`max_in_flight`).
    slots: Arc<Semaphore>,
    breaker: CircuitBreaker,
    /// Its calls since start, recorded by its sessions.
    stats: ModuleStats,
    shared: Arc<Shared>,
}

impl LoadedModule {
    /// Reads, verifies, compiles and pre-links the module of `settings`, then
    /// asks it to describe itself.
    pub(super) async fn load(shared: Arc<Shared>, settings: &ModuleSettings) -> Result<LoadedModule, LoadError> {
        let name = settings.name.to_string();
        let path = settings.path.clone();
        let bytes = std::fs::read(&path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound {
                module: name.clone(),
                path: std::path::absolute(&path).unwrap_or_else(|_| path.clone()),
                settings: None,
            },
            _ => LoadError::Read {
                module: name.clone(),
                path: path.clone(),
                error,
            },
        })?;
        if settings.limits.fuel.is_some() && !shared.engine.meters_fuel() {
            return Err(LoadError::FuelUnavailable { module: name, path });
        }
        let digest = Sha256Digest::of(&bytes);
        if let Some(expected) = settings.sha256
            && expected != digest
        {
            return Err(LoadError::DigestMismatch {
                module: name,
                path,
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        let component = compile(&shared, &name, &path, digest, &bytes)?;
        let imports: Vec<String> = component
            .component_type()
            .imports(shared.engine.engine())
            .map(|(import, _)| import.to_string())
            .collect();
        let pre = link(&shared, &name, &path, &component, &imports)?;
        LoadedModule::prepare(shared, settings, digest, imports, pre).await
    }

    /// The native baseline's module for the `[[modules]]` entry of
    /// `settings`, by its name (runtime/native): the file is not read.
    #[cfg(feature = "native-baseline")]
    pub(super) async fn load_native(shared: Arc<Shared>, settings: &ModuleSettings) -> Result<LoadedModule, LoadError> {
        let name = settings.name.to_string();
        let native = super::native::by_name(&name).ok_or_else(|| LoadError::Describe {
            module: name.clone(),
            path: settings.path.clone(),
            message: format!("the native baseline has no module `{name}` (it has {})", super::native::NATIVE_MODULES),
        })?;
        let digest = Sha256Digest::of(format!("native-baseline:{name}").as_bytes());
        LoadedModule::prepare(shared, settings, digest, Vec::new(), ModulePre::Native(native)).await
    }

    /// The module of `settings` around `pre`, asked to describe itself.
    async fn prepare(
        shared: Arc<Shared>,
        settings: &ModuleSettings,
        digest: Sha256Digest,
        imports: Vec<String>,
        pre: ModulePre,
    ) -> Result<LoadedModule, LoadError> {
        let mut module = LoadedModule {
            name: settings.name.to_string(),
            path: settings.path.clone(),
            digest,
            info: ModuleInfo {
                name: String::new(),
                version: String::new(),
                product_types: Vec::new(),
            },
            imports,
            pre,
            config: ConfigCtx::from_table(&settings.config),
            http_policy: Arc::new(HttpPolicy::from_settings(settings).map_err(|message| LoadError::Credentials {
                module: settings.name.to_string(),
                message,
            })?),
            limits: settings.limits.clone(),
            slots: Arc::new(Semaphore::new(settings.limits.max_in_flight.get() as usize)),
            breaker: CircuitBreaker::new(settings.circuit_breaker.clone()),
            stats: ModuleStats::default(),
            shared,
        };
        let describe_error = |fault: ModuleFault| LoadError::Describe {
            module: fault.module.clone(),
            path: settings.path.clone(),
            message: fault.reason,
        };
        let mut session = module.session("describe").await.map_err(describe_error)?;
        module.info = session.describe().await.map_err(describe_error)?;
        Ok(module)
    }

    /// The operator's name for the module (settings.toml).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SHA-256 of the loaded file.
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// What the module said of itself when it was loaded.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The version of the contract the module is built against (its
    /// imports say), and so the records it is given.
    pub fn contract_version(&self) -> ContractVersion {
        self.pre.version()
    }

    /// The component's imports, as "commerce:fulfillment/http@1.0.0".
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Whether the module's engine meters fuel (some module has a budget).
    pub(super) fn engine_meters_fuel(&self) -> bool {
        self.shared.engine.meters_fuel()
    }

    /// What the module may use.
    pub fn limits(&self) -> &ModuleLimits {
        &self.limits
    }

    /// The destinations the host authenticates the module's requests to,
    /// and how (never a secret).
    pub fn credentials(&self) -> Vec<super::host::CredentialSummary> {
        self.http_policy.credentials.summary()
    }

    /// The module's circuit breaker (dispatch asks it before each
    /// `fulfill-product` call).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The module's calls since start, by function, and its faults by
    /// cause: what `GET /metrics` encodes.
    pub fn stats(&self) -> &ModuleStats {
        &self.stats
    }

    /// The summary of the module's calls since start (counts, and p50/p99
    /// estimated from the duration histogram's buckets as Prometheus'
    /// `histogram_quantile` does): what `GET /api/v1/modules` shows.
    pub fn call_stats(&self) -> CallStats {
        self.stats.call_stats()
    }

    /// How many orders the module is working on now.
    pub fn in_flight(&self) -> usize {
        (self.limits.max_in_flight.get() as usize).saturating_sub(self.slots.available_permits())
    }

    /// A fresh store and instance of the module for work on `order_number`,
    /// once one of its in-flight slots is free (waiting at most `wall_ms`).
    /// The instantiation counts as a call (`instantiate`) in the module's
    /// statistics, the wait for the slot included.
    pub async fn session(&self, order_number: &str) -> Result<ModuleSession<'_>, ModuleFault> {
        let started = Instant::now();
        let session = async {
            let slot = self.take_slot().await?;
            let state = HostState::new(
                LogCtx::new(&self.name, order_number, self.limits.log_bytes as usize),
                self.config.clone(),
                HttpCtx::new(self.shared.http_client.clone(), self.http_policy.clone(), &self.name),
                GrowthLimiter::new(self.limits.memory_bytes, self.limits.table_elements),
                CallMeter::new(self.limits.cpu()),
            );
            ModuleSession::start(self, self.shared.engine.engine(), &self.pre, state, slot).await
        }
        .await;
        self.stats.record(ModuleFunction::Instantiate, started.elapsed(), session.as_ref().err());
        session
    }

    async fn take_slot(&self) -> Result<OwnedSemaphorePermit, ModuleFault> {
        let wait = self.limits.wall();
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            // The semaphore is never closed; say so rather than panic.
            Ok(Err(_)) => Err(ModuleFault::new(&self.name, "instantiate", FaultCause::Error, "its in-flight slots are closed".into())),
            Err(_) => Err(ModuleFault::new(
                &self.name,
                "instantiate",
                FaultCause::NoSlot,
                format!(
                    "found no free slot within {} ms (wall_ms): it is already working on {} orders (max_in_flight)",
                    wait.as_millis(),
                    self.limits.max_in_flight
                ),
            )),
        }
    }
}

/// Compiles the component (once per engine and digest), telling a non-wasm
/// file and a core module apart from a broken component.
fn compile(shared: &Shared, name: &str, path: &Path, digest: Sha256Digest, bytes: &[u8]) -> Result<Component, LoadError> {
    if bytes.get(..4) != Some(&WASM_MAGIC[..]) {
        return Err(LoadError::NotWasm {
            module: name.to_string(),
            path: path.to_path_buf(),
        });
    }
    if bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
        return Err(LoadError::CoreModule {
            module: name.to_string(),
            path: path.to_path_buf(),
        });
    }
    shared.engine.component(digest, bytes).map_err(|error| LoadError::Invalid {
        module: name.to_string(),
        path: path.to_path_buf(),
        message: format!("{error:#}"),
    })
}

/// A component pre-linked against the host's imports, with the typed
/// exports of the contract version it is built against.
pub(super) enum ModulePre {
    V1_0(v1_0::FulfillmentModulePre<HostState>),
    V1_1(v1_1::FulfillmentModulePre<HostState>),
    /// The native baseline's plain Rust in place of the component.
    #[cfg(feature = "native-baseline")]
    Native(Arc<dyn super::native::NativeModule>),
}

impl ModulePre {
    fn version(&self) -> ContractVersion {
        match self {
            ModulePre::V1_0(_) => ContractVersion::V1_0,
            ModulePre::V1_1(_) => ContractVersion::V1_1,
            // It answers for all lines at once, as a 1.1 module does.
            #[cfg(feature = "native-baseline")]
            ModulePre::Native(_) => ContractVersion::V1_1,
        }
    }

    /// A fresh instance in `store`.
    pub(super) async fn instantiate(&self, store: &mut wasmtime::Store<HostState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            ModulePre::V1_0(pre) => Exports::V1_0 {
                exports: pre.instantiate_async(store).await?,
                order: None,
            },
            ModulePre::V1_1(pre) => Exports::V1_1 {
                exports: pre.instantiate_async(store).await?,
                order: None,
            },
            #[cfg(feature = "native-baseline")]
            ModulePre::Native(native) => Exports::Native(native.clone()),
        })
    }
}

/// Tells the contract version from the imports, checks the exports of that
/// version by name (to name what is missing), then pre-links the imports
/// and checks the export types.
fn link(shared: &Shared, name: &str, path: &Path, component: &Component, imports: &[String]) -> Result<ModulePre, LoadError> {
    let exported: Vec<String> = component
        .component_type()
        .exports(shared.engine.engine())
        .map(|(export, _)| export.to_string())
        .collect();
    let version = version::detect(imports.iter().map(String::as_str), exported.iter().map(String::as_str)).map_err(|error| {
        LoadError::Version {
            module: name.to_string(),
            path: path.to_path_buf(),
            error,
        }
    })?;
    let required = match version {
        ContractVersion::V1_0 => v1_0::REQUIRED_EXPORTS,
        ContractVersion::V1_1 => v1_1::REQUIRED_EXPORTS,
    };
    let missing: Vec<String> = required
        .iter()
        .filter(|required| !exported.iter().any(|export| export == *required))
        .map(|required| format!("`{required}`"))
        .collect();
    if !missing.is_empty() {
        return Err(LoadError::MissingExports {
            module: name.to_string(),
            path: path.to_path_buf(),
            version,
            missing,
            exported: exported.iter().map(|export| format!("`{export}`")).collect(),
        });
    }
    let incompatible = |error: wasmtime::Error| LoadError::Incompatible {
        module: name.to_string(),
        path: path.to_path_buf(),
        message: format!("{error:#}"),
    };
    let instance_pre = shared.engine.linker().instantiate_pre(component).map_err(incompatible)?;
    Ok(match version {
        ContractVersion::V1_0 => ModulePre::V1_0(v1_0::FulfillmentModulePre::new(instance_pre).map_err(incompatible)?),
        ContractVersion::V1_1 => ModulePre::V1_1(v1_1::FulfillmentModulePre::new(instance_pre).map_err(incompatible)?),
    })
}
