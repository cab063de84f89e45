//! `settings.toml`: what the operator configures, parsed and validated.
//!
//! Start at [`Settings::load`]. Every struct refuses unknown keys, and values
//! that have a shape (module names, host patterns, digests) are parsed into
//! newtypes while the TOML is read, so an error names the file, the line and
//! the key. Paths inside the file are relative to the file.

mod allowed_host;
mod credentials;
mod dashboard;
mod error;
mod fulfillment;
mod limits;
mod module;
mod runtime;
mod service;
mod telemetry;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use allowed_host::AllowedHost;
pub use credentials::{CredentialSettings, HeaderName, Secret, SecretSource, TokenUrl};
pub use dashboard::DashboardSettings;
pub use error::SettingsError;
pub use fulfillment::{FulfillmentMode, FulfillmentSettings};
pub use limits::{CircuitBreakerSettings, LoadFailurePolicy, MEMORY_CEILING_BYTES, ModuleLimits, TABLE_CEILING_ELEMENTS};
pub use module::{ModuleName, ModuleSettings, Sha256Digest};
pub use runtime::{ModuleCacheDir, RuntimeSettings};
pub use service::{
    ApiSettings, DatabaseSettings, OrderAccess, SqliteSynchronous, OrderSettings, PaymentSettings, ProductSettings, Role, ServerSettings,
    TokenSettings,
};
pub use telemetry::{LogFormat, LoggingSettings, MetricsSettings};

/// The whole settings file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file the settings were read from.
    pub path: PathBuf,
    /// Every `[[modules]]` entry, in dispatch order, enabled or not.
    pub modules: Vec<ModuleSettings>,
    pub server: ServerSettings,
    /// The URL with a relative SQLite path resolved against the file.
    pub database: DatabaseSettings,
    pub orders: OrderSettings,
    pub fulfillment: FulfillmentSettings,
    pub payments: PaymentSettings,
    pub api: ApiSettings,
    pub dashboard: DashboardSettings,
    pub products: Vec<ProductSettings>,
    pub metrics: MetricsSettings,
    pub logging: LoggingSettings,
    /// `[runtime]`'s compiled-module cache folder, resolved against the
    /// file's folder and the environment.
    pub module_cache: ModuleCacheDir,
    /// Run the native baseline's plain Rust modules, by `[[modules]]`
    /// name, in place of the `.wasm` files (benchmark-only: never read from
    /// the file; `serve --native-baseline` sets it).
    #[cfg(feature = "native-baseline")]
    pub native_baseline: bool,
}

/// The file as written, before paths are resolved.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    #[serde(default)]
    modules: Vec<ModuleSettings>,
    #[serde(default)]
    server: ServerSettings,
    #[serde(default)]
    database: DatabaseSettings,
    #[serde(default)]
    orders: OrderSettings,
    #[serde(default)]
    fulfillment: FulfillmentSettings,
    #[serde(default)]
    payments: PaymentSettings,
    #[serde(default)]
    api: ApiSettings,
    #[serde(default)]
    dashboard: DashboardSettings,
    #[serde(default)]
    products: Vec<ProductSettings>,
    #[serde(default)]
    metrics: MetricsSettings,
    #[serde(default)]
    logging: LoggingSettings,
    #[serde(default)]
    runtime: RuntimeSettings,
}

impl Settings {
    /// Reads and validates the settings file at `path`.
    ///
    /// Module paths are resolved against the file's folder; that the files
    /// exist and are valid components is checked when the runtime loads them.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(&text, path)
    }

    /// Parses settings from `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Settings, SettingsError> {
        let file: SettingsFile = toml::from_str(text).map_err(|source| SettingsError::Parse {
            path: path.to_path_buf(),
            message: source.to_string(),
        })?;
        let mut first_index = std::collections::HashMap::new();
        for (index, module) in file.modules.iter().enumerate() {
            if let Some(first) = first_index.insert(&module.name, index) {
                return Err(SettingsError::DuplicateModule {
                    path: path.to_path_buf(),
                    name: module.name.to_string(),
                    first: first + 1,
                    second: index + 1,
                });
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let modules = file
            .modules
            .into_iter()
            .map(|module| resolve_module(module, base, path))
            .collect::<Result<_, _>>()?;
        if file.fulfillment.sync_wait_ms >= file.server.request_timeout_ms {
            return Err(SettingsError::SyncWaitTooLong {
                path: path.to_path_buf(),
                sync_wait_ms: file.fulfillment.sync_wait_ms,
                request_timeout_ms: file.server.request_timeout_ms,
            });
        }
        let mut database = file.database;
        database.url = resolve_sqlite_path(&database.url, base);
        Ok(Settings {
            path: path.to_path_buf(),
            modules,
            server: file.server,
            database,
            orders: file.orders,
            fulfillment: file.fulfillment,
            payments: PaymentSettings {
                test_ledger: file.payments.test_ledger.map(|ledger| base.join(ledger)),
            },
            api: file.api,
            dashboard: file.dashboard,
            products: file.products,
            metrics: file.metrics,
            logging: file.logging,
            module_cache: file.runtime.cache_dir(base, |name| std::env::var_os(name)),
            #[cfg(feature = "native-baseline")]
            native_baseline: false,
        })
    }

    /// `[logging] format` of the settings file at `path`, read before the
    /// log is set up (and so before the whole file is): None when the file
    /// is missing, or when it or its `[logging]` is broken (the command
    /// then reports the error when it loads the file).
    pub fn log_format_in(path: &Path) -> Option<LogFormat> {
        #[derive(Deserialize)]
        struct LoggingOnly {
            #[serde(default)]
            logging: LoggingSettings,
        }
        let text = std::fs::read_to_string(path).ok()?;
        toml::from_str::<LoggingOnly>(&text).ok().map(|file| file.logging.format)
    }

    /// The modules that are enabled, in dispatch order.
    pub fn enabled_modules(&self) -> impl Iterator<Item = &ModuleSettings> {
        self.modules.iter().filter(|module| module.enabled)
    }
}

/// `module` with its path resolved against `base` and the secrets of its
/// credentials read; a credential must be for one of its `allowed_hosts`.
fn resolve_module(mut module: ModuleSettings, base: &Path, path: &Path) -> Result<ModuleSettings, SettingsError> {
    module.path = base.join(&module.path);
    for (destination, credential) in &mut module.credentials {
        let error = |message: String| SettingsError::Credential {
            path: path.to_path_buf(),
            module: module.name.to_string(),
            destination: destination.to_string(),
            message,
        };
        if !module.allowed_hosts.contains(destination) {
            return Err(error("the destination is not in the module's allowed_hosts".to_string()));
        }
        credential.resolve(base).map_err(error)?;
    }
    Ok(module)
}

/// `sqlite://relative.db` becomes `sqlite://<settings folder>/relative.db`;
/// absolute paths, `sqlite::memory:` and other URLs are kept.
fn resolve_sqlite_path(url: &str, base: &Path) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) if !rest.starts_with('/') && !rest.is_empty() => {
            format!("sqlite://{}", base.join(rest).display())
        }
        _ => url.to_string(),
    }
}
