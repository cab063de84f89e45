//! One `[[modules]]` entry.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{AllowedHost, CircuitBreakerSettings, CredentialSettings, LoadFailurePolicy, ModuleLimits};

/// A fulfillment module as the operator configured it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSettings {
    /// The operator's name for the module: in logs, notes and the API.
    pub name: ModuleName,
    /// The `.wasm` component; relative to the settings file once loaded.
    pub path: PathBuf,
    /// When set, the file's SHA-256 must match or the module is not loaded.
    #[serde(default)]
    pub sha256: Option<Sha256Digest>,
    /// A disabled module is neither loaded nor dispatched to.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Where the module may send HTTP requests; empty = nowhere.
    #[serde(default)]
    pub allowed_hosts: Vec<AllowedHost>,
    /// How the host authenticates the requests it sends for the module, per
    /// destination of `allowed_hosts` (`[modules.credentials."https://lms"]`).
    #[serde(default, deserialize_with = "credentials_by_destination")]
    pub credentials: BTreeMap<AllowedHost, CredentialSettings>,
    /// Whether a load failure stops the host or leaves the module disabled.
    #[serde(default)]
    pub on_load_failure: LoadFailurePolicy,
    /// What the module may use (`[modules.limits]`).
    #[serde(default)]
    pub limits: ModuleLimits,
    /// When the host stops calling the module for a while
    /// (`[modules.circuit_breaker]`).
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerSettings,
    /// The module's own settings, handed to it through the `config` import.
    #[serde(default)]
    pub config: toml::Table,
}

impl ModuleSettings {
    /// Settings for a module file that settings.toml does not list: the
    /// defaults, no config, no HTTP.
    pub fn for_file(name: ModuleName, path: PathBuf) -> ModuleSettings {
        ModuleSettings {
            name,
            path,
            sha256: None,
            enabled: true,
            allowed_hosts: Vec::new(),
            credentials: BTreeMap::new(),
            on_load_failure: LoadFailurePolicy::Stop,
            limits: ModuleLimits::default(),
            circuit_breaker: CircuitBreakerSettings::default(),
            config: toml::Table::new(),
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

/// The credentials table, keyed by destination; two keys that name the same
/// destination (`https://lms` and `https://lms:443`) are refused, naming
/// both, instead of one silently replacing the other.
fn credentials_by_destination<'de, D>(deserializer: D) -> Result<BTreeMap<AllowedHost, CredentialSettings>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let written = BTreeMap::<String, CredentialSettings>::deserialize(deserializer)?;
    let mut by_destination: BTreeMap<AllowedHost, (String, CredentialSettings)> = BTreeMap::new();
    for (key, credential) in written {
        let destination = AllowedHost::try_from(key.clone()).map_err(serde::de::Error::custom)?;
        if let Some((first, _)) = by_destination.get(&destination) {
            return Err(serde::de::Error::custom(format!(
                "credentials `{first}` and `{key}` are for the same destination {destination}"
            )));
        }
        by_destination.insert(destination, (key, credential));
    }
    Ok(by_destination.into_iter().map(|(destination, (_, credential))| (destination, credential)).collect())
}

/// A module name: 1 to 64 characters of `a-z`, `0-9`, `-` and `_`, starting
/// with a letter, so that it reads well in logs, notes and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ModuleName(String);

impl ModuleName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A valid name made from a file's name: "enrollment_code.wasm" gives
    /// "enrollment_code", "My Module.wasm" gives "my-module".
    pub fn from_file_name(path: &std::path::Path) -> ModuleName {
        let stem = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let mut name: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' })
            .take(62)
            .collect();
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            name.insert_str(0, "m-");
        }
        ModuleName(name)
    }
}

impl TryFrom<String> for ModuleName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        let well_formed = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if well_formed {
            Ok(ModuleName(name))
        } else {
            Err(format!(
                "invalid module name `{name}`: use 1 to 64 of a-z, 0-9, `-` and `_`, starting with a letter"
            ))
        }
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 digest, written as 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        use sha2::Digest;
        Sha256Digest(sha2::Sha256::digest(bytes).into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl TryFrom<String> for Sha256Digest {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut digest)
            .map_err(|_| format!("invalid sha256 `{text}`: expected 64 hex digits"))?;
        Ok(Sha256Digest(digest))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
