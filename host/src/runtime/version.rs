//! The contract versions the host serves, and which one a component was
//! built against.

use std::fmt;

/// The WIT package every module implements.
pub const PACKAGE: &str = "commerce:fulfillment";

/// A version of `commerce:fulfillment` the host serves: a module built
/// against any of them loads, and sees the order as that version defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContractVersion {
    /// wit/1.0: `supports-line` per line; the order without shipping or
    /// addresses.
    V1_0,
    /// wit/1.1: the batched `supports-lines`, the order's shipping and
    /// addresses, the refund on `revoke-line`.
    V1_1,
}

impl ContractVersion {
    /// Every version served, oldest first.
    pub const SERVED: [ContractVersion; 2] = [ContractVersion::V1_0, ContractVersion::V1_1];

    /// The newest version served: what `fulfillment-host new` writes.
    pub const NEWEST: ContractVersion = ContractVersion::V1_1;

    /// "1.0.0", "1.1.0".
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V1_0 => "1.0.0",
            ContractVersion::V1_1 => "1.1.0",
        }
    }

    /// The served version a package version belongs to: the same major and
    /// minor (a patch release changes comments only).
    fn of(major: u64, minor: u64) -> Option<ContractVersion> {
        match (major, minor) {
            (1, 0) => Some(ContractVersion::V1_0),
            (1, 1) => Some(ContractVersion::V1_1),
            _ => None,
        }
    }

    /// The export that claims lines: 1.1's batched `supports-lines`, 1.0's
    /// `supports-line`.
    pub fn claim_function(self) -> &'static str {
        match self {
            ContractVersion::V1_0 => "supports-line",
            ContractVersion::V1_1 => "supports-lines",
        }
    }

    /// "1.0.0, 1.1.0".
    pub fn served_list() -> String {
        ContractVersion::SERVED.map(ContractVersion::as_str).join(", ")
    }
}

impl fmt::Display for ContractVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl serde::Serialize for ContractVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why a component's version is not one the host serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("it is built against {PACKAGE}@{found}, which this host does not serve (it serves {}); {}", ContractVersion::served_list(), advice(found))]
    NotServed { found: String },
    #[error("it imports two versions of {PACKAGE} ({}); a module is built against one", found.join(" and "))]
    Mixed { found: Vec<String> },
}

fn advice(found: &str) -> &'static str {
    if found.starts_with("1.") {
        "upgrade fulfillment-host, or rebuild the module against a version it serves"
    } else {
        "rebuild the module against a version it serves"
    }
}

/// The version of a component, from the names of its imports
/// ("commerce:fulfillment/types@1.1.0"); when it imports none of the
/// package's interfaces, from its exports: 1.0 when it exports 1.0's
/// `supports-line` and not 1.1's `supports-lines`, else the newest (what a
/// component that is no fulfillment module at all is told it lacks).
pub fn detect<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    exports: impl IntoIterator<Item = &'a str>,
) -> Result<ContractVersion, VersionError> {
    let prefix = format!("{PACKAGE}/");
    let mut found: Vec<&str> = imports
        .into_iter()
        .filter_map(|import| import.strip_prefix(prefix.as_str()))
        .filter_map(|interface| interface.split_once('@').map(|(_, version)| version))
        .collect();
    found.sort_unstable();
    // Every interface imported at one version is one version, a
    // pre-release too (whose `parse` is None: it must still be named as
    // not served, not as several versions); and 1.1.0 and 1.1.1 are one
    // version (a patch changes comments only).
    found.dedup_by(|later, earlier| later == earlier || (parse(later).is_some() && parse(later) == parse(earlier)));
    match found.as_slice() {
        [] => {
            let exports: Vec<&str> = exports.into_iter().collect();
            let has = |name: &str| exports.contains(&name);
            Ok(if has("supports-line") && !has("supports-lines") {
                ContractVersion::V1_0
            } else {
                ContractVersion::NEWEST
            })
        }
        [version] => parse(version)
            .and_then(|(major, minor)| ContractVersion::of(major, minor))
            .ok_or_else(|| VersionError::NotServed {
                found: version.to_string(),
            }),
        several => Err(VersionError::Mixed {
            found: several.iter().map(|version| version.to_string()).collect(),
        }),
    }
}

/// The major and minor of a release version ("1.1.0", "1.1.2+build"); none
/// for a pre-release ("1.1.0-rc.1"), which no host serves (wasmtime does not
/// link pre-releases by semver either).
fn parse(version: &str) -> Option<(u64, u64)> {
    let release = version.split_once('+').map_or(version, |(release, _build)| release);
    if release.contains('-') {
        return None;
    }
    let mut parts = release.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_the_imports() {
        let imports = ["wasi:io/streams@0.2.3", "commerce:fulfillment/types@1.0.0", "commerce:fulfillment/log@1.0.0"];
        assert_eq!(detect(imports, ["supports-line"]), Ok(ContractVersion::V1_0));
        let imports = ["commerce:fulfillment/types@1.1.0", "commerce:fulfillment/http@1.1.0"];
        assert_eq!(detect(imports, ["supports-lines"]), Ok(ContractVersion::V1_1));
        assert_eq!(detect(["commerce:fulfillment/types@1.1.2"], []), Ok(ContractVersion::V1_1), "a patch release is its minor");
    }

    #[test]
    fn without_imports_of_the_package_the_exports_decide() {
        assert_eq!(detect(["wasi:cli/environment@0.2.0"], ["describe", "supports-lines"]), Ok(ContractVersion::V1_1));
        assert_eq!(detect([], ["describe", "supports-line"]), Ok(ContractVersion::V1_0));
        assert_eq!(detect([], ["wasi:cli/run@0.2.0"]), Ok(ContractVersion::NEWEST), "no fulfillment module: told the newest");
    }

    #[test]
    fn versions_not_served_are_named() {
        let error = detect(["commerce:fulfillment/types@1.2.0"], []).expect_err("1.2 is not served");
        assert_eq!(
            error.to_string(),
            "it is built against commerce:fulfillment@1.2.0, which this host does not serve (it serves 1.0.0, 1.1.0); upgrade fulfillment-host, or rebuild the module against a version it serves"
        );
        assert!(matches!(detect(["commerce:fulfillment/types@2.0.0"], []), Err(VersionError::NotServed { .. })));
        assert_eq!(
            detect(["commerce:fulfillment/types@1.1.0-rc.1"], []),
            Err(VersionError::NotServed { found: "1.1.0-rc.1".into() }),
            "a pre-release is named, not served"
        );
        assert_eq!(
            detect(["commerce:fulfillment/types@1.1.0", "commerce:fulfillment/log@1.1.1"], []),
            Ok(ContractVersion::V1_1),
            "two patches of one minor are one version"
        );
        let error = detect(["commerce:fulfillment/types@1.0.0", "commerce:fulfillment/log@1.1.0"], []).expect_err("mixed");
        assert_eq!(error.to_string(), "it imports two versions of commerce:fulfillment (1.0.0 and 1.1.0); a module is built against one");
    }

    /// A module built against a pre-release imports every interface at it:
    /// that is one version, not served, never "two versions".
    #[test]
    fn one_pre_release_imported_by_every_interface_is_one_version_not_served() {
        let imports = ["types", "log", "config", "http"].map(|interface| format!("commerce:fulfillment/{interface}@1.1.0-rc.1"));
        let error = detect(imports.iter().map(String::as_str), ["supports-lines"]).expect_err("a pre-release is not served");
        assert_eq!(error, VersionError::NotServed { found: "1.1.0-rc.1".into() });
        assert!(error.to_string().starts_with("it is built against commerce:fulfillment@1.1.0-rc.1, which this host does not serve"), "{error}");
        // Two pre-releases, or a pre-release beside a release, are two versions.
        let two = detect(["commerce:fulfillment/types@1.1.0-rc.1", "commerce:fulfillment/log@1.1.0-rc.2"], []);
        assert_eq!(two, Err(VersionError::Mixed { found: vec!["1.1.0-rc.1".into(), "1.1.0-rc.2".into()] }));
        let beside = detect(["commerce:fulfillment/types@1.1.0-rc.1", "commerce:fulfillment/log@1.1.0"], []);
        assert!(matches!(beside, Err(VersionError::Mixed { .. })), "{beside:?}");
    }

    fn wit_file(version: &str, name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit").join(version).join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// wit/1.0 is what 1.0 modules were built from: it must not change. (If
    /// only a comment changed, and on purpose, update its digest here.)
    #[test]
    fn the_1_0_wit_is_frozen() {
        use sha2::Digest;
        let frozen = [
            ("config.wit", "4d2a63cc003c6f741d87ce4725cc4d3de29b47761e39399bb26117559e9fb5e2"),
            ("http.wit", "06189eecd0625be4d695d414589a3bdc3373c0cbbae3df16f127d42ca328bb0b"),
            ("log.wit", "dda6e60ac8274b56878b400bbe559b54e1ae915fbbe464024e5aacc2d59784f8"),
            ("types.wit", "06e6d0ec37f5a889649520fbce503f0d5c8e29184b5a90378e9c1f69725b3b55"),
            ("world.wit", "6c61e799833e9c329247655fc5caa76501cefd8fb73bd03f9c3e8ee57b09e064"),
        ];
        for (name, digest) in frozen {
            let actual = hex::encode(sha2::Sha256::digest(wit_file("1.0", name)));
            assert_eq!(actual, digest, "wit/1.0/{name} changed: 1.0 is frozen (docs/plugin-authors.md, Contract versions)");
        }
    }

    /// The host links every 1.x module's imports to the newest version's
    /// interfaces: their functions and types must be 1.0's exactly (comments
    /// and the version aside).
    #[test]
    fn the_imported_interfaces_are_the_same_in_every_1_x() {
        let code = |text: String| -> Vec<String> {
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with("//"))
                .map(|line| line.replace("@1.0.0", "@1.x").replace(&format!("@{}", ContractVersion::NEWEST), "@1.x"))
                .collect()
        };
        for name in ["log.wit", "config.wit", "http.wit"] {
            assert_eq!(
                code(wit_file("1.1", name)),
                code(wit_file("1.0", name)),
                "wit/1.1/{name} differs from 1.0's: 1.0 modules link their imports to 1.1's"
            );
        }
    }
}
