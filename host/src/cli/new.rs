//! `fulfillment-host new NAME --lang rust|js|python`: writes a module project
//! that builds and tests as it is: the WIT (the host's own `wit/1.1`, built
//! in, so it cannot drift from what the host serves), a module that claims
//! one product type and calls one HTTP service, a sample order, a stand-in
//! for the service, and `test.sh`, which builds the module and runs it
//! through `run-module` against the stand-in.
//!
//! The templates are the files under `host/templates/new/` (`common/` for
//! every language), built into the binary; `{{key}}` in them is replaced by
//! the project's values (`PROJECT_VALUES`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// The language of a new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with wit-bindgen, built for wasm32-wasip2 by cargo.
    Rust,
    /// JavaScript, built by componentize-js (npm).
    #[value(alias = "javascript")]
    Js,
    /// Python, built by componentize-py (pip).
    Python,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Rust => "Rust",
            Lang::Js => "JavaScript",
            Lang::Python => "Python",
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project's name, also its package's and its module's: lower-case
    /// letters, digits and single `-` between them, starting with a letter
    /// ("gift-cards").
    name: String,
    /// The language of the module.
    #[arg(long, value_enum)]
    lang: Lang,
    /// The product type the module fulfills, spelled as in the catalog.
    #[arg(long, default_value = "Gift Card")]
    product_type: String,
    /// The folder to write the project into (default: ./NAME). It must not
    /// exist, or be empty.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
}

/// Why `new` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum NewProjectError {
    /// The name cannot name a package.
    #[error("invalid project name `{name}`: {why}")]
    InvalidName { name: String, why: String },
    /// The product type cannot be declared.
    #[error("invalid --product-type {product_type:?}: {why}")]
    InvalidProductType { product_type: String, why: &'static str },
    /// The folder holds files already.
    #[error("{} already exists and is not empty: choose another NAME or --dir", .0.display())]
    FolderNotEmpty(PathBuf),
    /// The path is a file.
    #[error("{} already exists and is not a folder", .0.display())]
    NotAFolder(PathBuf),
}

/// The longest project name: a package name anywhere, and a file name.
const MAX_NAME_LEN: usize = 64;
/// The longest product type (the catalog's column is wider; this keeps the
/// generated code readable).
const MAX_PRODUCT_TYPE_LEN: usize = 100;

/// Names cargo refuses for a package (a Rust keyword cannot name the
/// library; the others clash with the standard crates or the target folder).
const RUST_RESERVED: &[&str] = &[
    "abstract", "alloc", "as", "async", "await", "become", "box", "break", "build", "const", "continue", "core",
    "crate", "deps", "do", "dyn", "else", "enum", "examples", "extern", "false", "final", "fn", "for", "gen", "if",
    "impl", "in", "incremental", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv",
    "proc-macro", "pub", "ref", "return", "self", "static", "std", "struct", "super", "test", "trait", "true", "try",
    "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Checks that `name` can name the project's package in every language
/// (cargo, npm, pip) and its `.wasm` file; the error says what is wrong.
pub fn validate_name(name: &str, lang: Lang) -> Result<(), NewProjectError> {
    let invalid = |why: String| NewProjectError::InvalidName { name: name.to_string(), why };
    let Some(first) = name.chars().next() else {
        return Err(invalid("it is empty".into()));
    };
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(format!("it is {} characters long, at most {MAX_NAME_LEN} are allowed", name.len())));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        let hint = if bad.is_ascii_uppercase() || bad == '_' || bad == ' ' {
            format!(" (try `{}`)", suggestion(name))
        } else {
            String::new()
        };
        return Err(invalid(format!(
            "{bad:?} is not allowed: use lower-case letters, digits and `-`{hint}"
        )));
    }
    if !first.is_ascii_lowercase() {
        return Err(invalid("it must start with a letter".into()));
    }
    if name.ends_with('-') || name.contains("--") {
        return Err(invalid("a `-` must stand between two letters or digits".into()));
    }
    if lang == Lang::Rust && RUST_RESERVED.contains(&name) {
        return Err(invalid("cargo does not accept it as a package name (a Rust keyword or a reserved name)".into()));
    }
    Ok(())
}

/// `Gift_Cards 2` -> `gift-cards-2`.
fn suggestion(name: &str) -> String {
    let lowered: String = name
        .chars()
        .map(|c| if c == '_' || c == ' ' { '-' } else { c.to_ascii_lowercase() })
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect();
    lowered.split('-').filter(|part| !part.is_empty()).collect::<Vec<_>>().join("-")
}

/// Checks that the module can declare `product_type`: it is written into
/// source code in three languages and into JSON.
pub fn validate_product_type(product_type: &str) -> Result<(), NewProjectError> {
    let invalid = |why| NewProjectError::InvalidProductType { product_type: product_type.to_string(), why };
    if product_type.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if product_type.trim() != product_type {
        return Err(invalid("it starts or ends with a space; the host matches product types exactly as spelled"));
    }
    if product_type == "*" {
        return Err(invalid("`*` declares every product type; the template fulfills one"));
    }
    if product_type.chars().any(char::is_control) {
        return Err(invalid("it holds a control character"));
    }
    if product_type.chars().count() > MAX_PRODUCT_TYPE_LEN {
        return Err(invalid("it is longer than 100 characters"));
    }
    Ok(())
}

/// One file of a project: its path in the project, its template text, and
/// whether it is a script to run.
#[derive(Debug, Clone, Copy)]
struct TemplateFile {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> TemplateFile {
    TemplateFile { path, text, executable: false }
}

const fn script(path: &'static str, text: &'static str) -> TemplateFile {
    TemplateFile { path, text, executable: true }
}

/// The contract, exactly the host's `wit/1.1`.
const WIT: &[TemplateFile] = &[
    file("wit/world.wit", include_str!("../../../wit/1.1/world.wit")),
    file("wit/types.wit", include_str!("../../../wit/1.1/types.wit")),
    file("wit/config.wit", include_str!("../../../wit/1.1/config.wit")),
    file("wit/http.wit", include_str!("../../../wit/1.1/http.wit")),
    file("wit/log.wit", include_str!("../../../wit/1.1/log.wit")),
];

/// The WIT package the projects implement (the one `WIT` holds).
const CONTRACT: &str = "commerce:fulfillment@1.1.0";

const COMMON: &[TemplateFile] = &[
    file("order.json", include_str!("../../templates/new/common/order.json")),
    script("test.sh", include_str!("../../templates/new/common/test.sh")),
];

const PYTHON_STANDIN: TemplateFile =
    script("service_standin.py", include_str!("../../templates/new/common/service_standin.py"));

const RUST: &[TemplateFile] = &[
    file("README.md", include_str!("../../templates/new/rust/README.md")),
    file("Cargo.toml", include_str!("../../templates/new/rust/Cargo.toml")),
    file("src/lib.rs", include_str!("../../templates/new/rust/src/lib.rs")),
    script("build.sh", include_str!("../../templates/new/rust/build.sh")),
    file(".gitignore", include_str!("../../templates/new/rust/gitignore")),
    PYTHON_STANDIN,
];

const JS: &[TemplateFile] = &[
    file("README.md", include_str!("../../templates/new/js/README.md")),
    file("package.json", include_str!("../../templates/new/js/package.json")),
    file("src/module.js", include_str!("../../templates/new/js/src/module.js")),
    file("build.mjs", include_str!("../../templates/new/js/build.mjs")),
    script("build.sh", include_str!("../../templates/new/js/build.sh")),
    file(".gitignore", include_str!("../../templates/new/js/gitignore")),
    script("service-standin.mjs", include_str!("../../templates/new/js/service-standin.mjs")),
];

const PYTHON: &[TemplateFile] = &[
    file("README.md", include_str!("../../templates/new/python/README.md")),
    file("app.py", include_str!("../../templates/new/python/app.py")),
    file("requirements.txt", include_str!("../../templates/new/python/requirements.txt")),
    script("build.sh", include_str!("../../templates/new/python/build.sh")),
    file(".gitignore", include_str!("../../templates/new/python/gitignore")),
    PYTHON_STANDIN,
];

/// Every file of a `lang` project, in the order they are listed.
fn template_files(lang: Lang) -> impl Iterator<Item = &'static TemplateFile> {
    let own = match lang {
        Lang::Rust => RUST,
        Lang::Js => JS,
        Lang::Python => PYTHON,
    };
    own.iter().chain(COMMON).chain(WIT)
}

/// The values of the templates' `{{key}}`s for one project.
#[derive(Debug)]
struct ProjectValues {
    /// The package name: "gift-cards".
    name: String,
    /// The product type as a string literal, valid in Rust, JavaScript,
    /// Python and JSON alike (JSON's escapes, of `"` and `\` only: control
    /// characters are refused).
    product_type: String,
    /// The built module, at the project's root: "gift-cards.wasm".
    wasm_file: String,
    /// What cargo names the library: "gift_cards".
    crate_file: String,
    /// The command that starts the stand-in.
    standin_command: &'static str,
}

impl ProjectValues {
    fn new(name: &str, product_type: &str, lang: Lang) -> ProjectValues {
        ProjectValues {
            name: name.to_string(),
            product_type: serde_json::Value::String(product_type.to_string()).to_string(),
            wasm_file: format!("{name}.wasm"),
            crate_file: name.replace('-', "_"),
            standin_command: match lang {
                Lang::Js => "node service-standin.mjs",
                Lang::Rust | Lang::Python => "python3 service_standin.py",
            },
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        Some(match key {
            "name" => &self.name,
            "product_type" => &self.product_type,
            "wasm_file" => &self.wasm_file,
            "crate_file" => &self.crate_file,
            "standin_command" => self.standin_command,
            _ => return None,
        })
    }
}

/// `text` with each `{{key}}` replaced by its value; a `{{` that does not
/// open a known key is left as it is (the unit tests check that no template
/// has one).
fn render(text: &str, values: &ProjectValues) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| Some((values.get(&after[..end])?, end))) {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Refuses a folder that holds anything, or a path that is a file.
fn check_target(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => Err(NewProjectError::NotAFolder(dir.to_path_buf()).into()),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
            if entries.next().is_some() {
                Err(NewProjectError::FolderNotEmpty(dir.to_path_buf()).into())
            } else {
                Ok(())
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(anyhow::Error::new(error).context(format!("cannot read {}", dir.display()))),
    }
}

fn write_file(path: &Path, text: &str, executable: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(not(unix))]
    let _ = executable;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

/// Writes the project and says what to run next.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    validate_name(&args.name, args.lang)?;
    validate_product_type(&args.product_type)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    check_target(&dir)?;
    let values = ProjectValues::new(&args.name, &args.product_type, args.lang);
    let mut written = Vec::new();
    for template in template_files(args.lang) {
        let path = dir.join(template.path);
        write_file(&path, &render(template.text, &values), template.executable)?;
        written.push(path);
    }
    let mut out = format!(
        "created {}: a {} module for {} lines ({CONTRACT})\n",
        dir.display(),
        args.lang,
        values.product_type
    );
    for path in &written {
        out.push_str(&format!("  {}\n", path.display()));
    }
    out.push_str(&format!(
        "next: cd {} && ./test.sh   (builds the module and runs it through `fulfillment-host run-module`; \
         set FULFILLMENT_HOST=/path/to/fulfillment-host when it is not on PATH)\n",
        dir.display()
    ));
    super::print::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANGS: [Lang; 3] = [Lang::Rust, Lang::Js, Lang::Python];

    fn why(result: Result<(), NewProjectError>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn a_package_safe_name_is_accepted() {
        for name in ["gift-cards", "a", "shop2", "x-1-y"] {
            for lang in LANGS {
                assert!(validate_name(name, lang).is_ok(), "{name} ({lang})");
            }
        }
    }

    #[test]
    fn a_bad_name_is_refused_saying_what_is_wrong() {
        let cases = [
            ("", "it is empty"),
            ("Gift_Cards", "'G' is not allowed: use lower-case letters, digits and `-` (try `gift-cards`)"),
            ("gift cards", "' ' is not allowed: use lower-case letters, digits and `-` (try `gift-cards`)"),
            ("../evil", "'.' is not allowed: use lower-case letters, digits and `-`"),
            ("2cards", "it must start with a letter"),
            ("-cards", "it must start with a letter"),
            ("cards-", "a `-` must stand between two letters or digits"),
            ("gift--cards", "a `-` must stand between two letters or digits"),
            ("caf\u{e9}", "'\u{e9}' is not allowed: use lower-case letters, digits and `-`"),
        ];
        for (name, expected) in cases {
            assert_eq!(why(validate_name(name, Lang::Js)), format!("invalid project name `{name}`: {expected}"));
        }
        let long = "a".repeat(65);
        assert!(why(validate_name(&long, Lang::Python)).ends_with("it is 65 characters long, at most 64 are allowed"));
    }

    #[test]
    fn a_name_cargo_refuses_is_refused_for_rust_only() {
        for name in ["fn", "std", "test", "build"] {
            assert!(why(validate_name(name, Lang::Rust)).contains("cargo does not accept it"), "{name}");
            assert!(validate_name(name, Lang::Python).is_ok(), "{name}");
        }
    }

    #[test]
    fn a_product_type_that_cannot_be_declared_is_refused() {
        assert!(validate_product_type("Gift Card").is_ok());
        assert!(validate_product_type("Café \"Spécial\" \\ 1").is_ok());
        for (product_type, expected) in [
            ("", "it is empty"),
            (" Seat", "it starts or ends with a space"),
            ("*", "`*` declares every product type"),
            ("Seat\nX", "it holds a control character"),
        ] {
            assert!(why(validate_product_type(product_type)).contains(expected), "{product_type:?}");
        }
    }

    #[test]
    fn every_template_renders_without_a_placeholder_left() {
        for lang in LANGS {
            let values = ProjectValues::new("gift-cards", "Gift \"Card\"", lang);
            for template in template_files(lang) {
                let text = render(template.text, &values);
                assert!(!text.contains("{{"), "{} ({lang}) keeps a placeholder", template.path);
            }
        }
    }

    #[test]
    fn a_product_type_is_written_as_a_string_literal() {
        let values = ProjectValues::new("gift-cards", "Gift \"Card\" \\ é", Lang::Rust);
        assert_eq!(values.product_type, r#""Gift \"Card\" \\ é""#);
        assert_eq!(render("const T: &str = {{product_type}};", &values), r#"const T: &str = "Gift \"Card\" \\ é";"#);
        assert_eq!(render("{{unknown}} {{name}}", &values), "{{unknown}} gift-cards");
    }

    /// componentize-py copies the WIT's comments into Python docstrings: a
    /// backslash there (`\u{1b}` once was in log.wit) is an escape, and a bad
    /// one a syntax error that stops every Python module from building.
    #[test]
    fn the_wit_comments_hold_no_backslash() {
        for wit in WIT {
            assert!(!wit.text.contains('\\'), "{} has a backslash", wit.path);
        }
    }

    #[test]
    fn the_wit_is_the_contract_the_projects_name() {
        let world = WIT.iter().find(|wit| wit.path == "wit/world.wit").expect("world.wit");
        assert!(world.text.contains(&format!("package {CONTRACT};")));
    }

    #[test]
    fn an_existing_folder_is_refused_unless_empty() {
        let temp = tempfile::tempdir().expect("temp dir");
        assert!(check_target(&temp.path().join("absent")).is_ok());
        assert!(check_target(temp.path()).is_ok());
        std::fs::write(temp.path().join("notes.txt"), "x").expect("write");
        let error = check_target(temp.path()).expect_err("refused").to_string();
        assert_eq!(error, format!("{} already exists and is not empty: choose another NAME or --dir", temp.path().display()));
        let error = check_target(&temp.path().join("notes.txt")).expect_err("refused").to_string();
        assert!(error.ends_with("notes.txt already exists and is not a folder"), "{error}");
    }
}
