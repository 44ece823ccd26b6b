//! `edgeguard build`: a deployable worker directory for a policy — the prebuilt engine this
//! binary carries, the policy's bundle and an entry module — with no compiler toolchain.
//!
//! The engine is built once per edgeguard version; a policy change is a new bundle next to the
//! same engine bytes. Every bundle written is loaded back with the engine's own loader before
//! the command succeeds, so a directory `build` wrote never serves 503 `edge-misconfigured`.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use edgeguard_core::{Bundle, Engine};
use serde::Serialize;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};

use crate::engine::{self, Embedded};
use crate::render::{self, Counts, Stream};
use crate::{CmdResult, Failure, Status, output, policy};

/// Write a deployable worker (engine + policy bundle) into a directory.
#[derive(Debug, clap::Args)]
#[command(after_help = "DIR gets index.mjs (the entry: wrangler's `main`), the engine (shell.mjs, \
    engine.js, engine_bg.wasm: the same bytes for every policy), policy.egb and edgeguard.json. \
    Diagnostics go to stderr as with `check`; nothing is written when the policy has errors. \
    The wrangler.toml lines the worker needs are printed, or merged into a file with \
    --wrangler-toml (its other settings and bindings are kept).\n\n\
    Examples:\n  \
    edgeguard build policy.toml -o edge\n  \
    edgeguard build policy.toml --env staging -o edge-staging\n  \
    edgeguard build policy.toml -o edge --wrangler-toml wrangler.toml\n  \
    edgeguard build policy.toml --shadow candidate.toml -o edge   # candidate decides too, enforces nothing")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// The directory to write (created if missing; an existing one must be an earlier build).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Compile for this environment (overrides `app.environment`, picks `[env.NAME]`).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// A candidate policy that decides every request next to POLICY and enforces nothing; where
    /// it disagrees, the edge logs what it would have done (compiled for the same --env).
    #[arg(long, value_name = "CANDIDATE")]
    pub shadow: Option<PathBuf>,
    /// Merge what the worker needs (main, the .egb Data rule, the limiter binding) into this
    /// wrangler.toml, creating it when missing; other settings and bindings are kept.
    #[arg(long, value_name = "WRANGLER_TOML")]
    pub wrangler_toml: Option<PathBuf>,
    /// Refuse to build when a policy has warnings.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// `edgeguard.json`: what a build directory holds, for people and for `doctor`.
#[derive(Serialize)]
struct Manifest<'a> {
    edgeguard: &'static str,
    engine: EngineEntry,
    policy: BundleEntry<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shadow: Option<BundleEntry<'a>>,
}

#[derive(Serialize)]
struct EngineEntry {
    file: &'static str,
    sha256: String,
    format: u32,
}

#[derive(Serialize)]
struct BundleEntry<'a> {
    file: &'static str,
    source: &'a str,
    app: &'a str,
    environment: &'a str,
    revision: &'a str,
}

/// A policy compiled, encoded and loaded back.
struct Built {
    file: String,
    bundle: Bundle,
    bytes: Vec<u8>,
}

pub fn run(args: &Args) -> CmdResult {
    let Some(embedded) = engine::EMBEDDED else {
        return Err(Failure::usage(
            "this edgeguard binary was built without its engine, so it cannot write a worker; \
             install a release (`cargo install edgeguard-cli`, `npm i -D edgeguard`) or build the \
             engine first (`make engine` in the edgeguard repository)",
        ));
    };
    // Both policies are compiled (and all their diagnostics shown) before anything is written.
    let active = compile(&args.policy, args.env.as_deref(), args.deny_warnings)?;
    let shadow = args.shadow.as_deref().map(|p| compile(p, args.env.as_deref(), args.deny_warnings)).transpose()?;
    let Some(active) = active else { return Ok(Status::Failed) };
    let shadow = match shadow {
        Some(None) => return Ok(Status::Failed),
        Some(Some(built)) => Some(built),
        None => None,
    };

    prepare_dir(&args.output)?;
    let dir = &args.output;
    write(dir, engine::WASM, embedded.wasm)?;
    write(dir, engine::GLUE, embedded.glue.as_bytes())?;
    write(dir, engine::SHELL, embedded.shell.as_bytes())?;
    write(dir, engine::POLICY, &active.bytes)?;
    match &shadow {
        Some(s) => write(dir, engine::SHADOW, &s.bytes)?,
        None => remove_stale(&dir.join(engine::SHADOW))?,
    }
    write(dir, engine::ENTRY, engine::entry_module(shadow.is_some()).as_bytes())?;
    let manifest = manifest(&embedded, &active, shadow.as_ref());
    write(dir, engine::MANIFEST, manifest.as_bytes())?;

    let needs_limiter = has_global_limits(&active.bundle);
    let mut out = summary(dir, &embedded, &active, shadow.as_ref());
    match &args.wrangler_toml {
        Some(path) => {
            let changes = merge_wrangler_toml(path, dir, &active.bundle, needs_limiter)?;
            let _ = writeln!(out, "{}: {}", path.display(), if changes.is_empty() { "already up to date".to_owned() } else { changes.join(", ") });
        }
        None => {
            let main = relative_to(Path::new("."), &dir.join(engine::ENTRY));
            let _ = write!(out, "\nwrangler.toml needs (or pass --wrangler-toml wrangler.toml):\n\n{}", snippet(&main, needs_limiter));
        }
    }
    output::print(&out)?;
    Ok(Status::Success)
}

/// Compile one policy, show its diagnostics, encode it and load it back as the engine will.
/// `Ok(None)` when the policy failed (exit 1).
fn compile(path: &Path, env: Option<&str>, deny_warnings: bool) -> Result<Option<Built>, Failure> {
    let compiled = policy::load(path, env)?;
    let diags = &compiled.output.diagnostics;
    let counts = Counts::of(diags);
    if !diags.is_empty() {
        render::text(Stream::Stderr, &compiled.file, &compiled.source, diags)?;
        output::eprint(&render::summary(&compiled.file, counts, deny_warnings));
    }
    if counts.fail(deny_warnings) {
        return Ok(None);
    }
    let Some(bundle) = compiled.output.bundle else {
        return Err(Failure::failed(format!("`{}` compiled without errors but no bundle was produced (a bug in edgeguard)", compiled.file)));
    };
    let bytes = bundle.to_bytes().map_err(|e| Failure::failed(format!("cannot encode the bundle: {e}")))?;
    // The engine's own loader, on the exact bytes that will ship.
    Engine::load(&bytes).map_err(|e| Failure::failed(format!("the bundle of `{}` does not load: {e} (a bug in edgeguard)", compiled.file)))?;
    Ok(Some(Built { file: compiled.file, bundle, bytes }))
}

/// The output directory: created when missing; an existing one must be empty or an earlier
/// build (it has edgeguard.json), so a mistyped `-o` never overwrites someone's files.
fn prepare_dir(dir: &Path) -> Result<(), Failure> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            let ours = dir.join(engine::MANIFEST).is_file();
            if !ours && entries.next().is_some() {
                return Err(Failure::usage(format!(
                    "`{}` exists and is not an edgeguard build directory (no {}); pass a new or empty directory",
                    dir.display(),
                    engine::MANIFEST
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| Failure::usage(format!("cannot create `{}`: {e}", dir.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(Failure::usage(format!("`{}` is a file, not a directory", dir.display()))),
        Err(e) => Err(Failure::usage(format!("cannot read `{}`: {e}", dir.display()))),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Failure> {
    output::write_atomically(&dir.join(name), bytes)
}

fn remove_stale(path: &Path) -> Result<(), Failure> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Failure::usage(format!("cannot remove `{}`: {e}", path.display()))),
        _ => Ok(()),
    }
}

fn has_global_limits(bundle: &Bundle) -> bool {
    bundle.limits.iter().any(|l| l.scope == edgeguard_core::bundle::Scope::Global)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    edgeguard_core::bundle::hex(&Sha256::digest(bytes))
}

fn manifest(embedded: &Embedded, active: &Built, shadow: Option<&Built>) -> String {
    fn entry<'a>(file: &'static str, b: &'a Built) -> BundleEntry<'a> {
        BundleEntry {
            file,
            source: b.file.as_str(),
            app: b.bundle.app.name.as_str(),
            environment: b.bundle.app.environment.as_str(),
            revision: b.bundle.revision.as_str(),
        }
    }
    let m = Manifest {
        edgeguard: env!("CARGO_PKG_VERSION"),
        engine: EngineEntry { file: engine::WASM, sha256: sha256_hex(embedded.wasm), format: edgeguard_core::FORMAT_VERSION },
        policy: entry(engine::POLICY, active),
        shadow: shadow.map(|s| entry(engine::SHADOW, s)),
    };
    let mut json = serde_json::to_string_pretty(&m).unwrap_or_default();
    json.push('\n');
    json
}

fn summary(dir: &Path, embedded: &Embedded, active: &Built, shadow: Option<&Built>) -> String {
    let short = |b: &Built| b.bundle.revision.chars().take(12).collect::<String>();
    let mut out = format!(
        "wrote {} — engine {} ({} bytes, sha256 {}…), {} {} ({} bytes, environment {}, revision {}…)\n",
        dir.display(),
        env!("CARGO_PKG_VERSION"),
        embedded.wasm.len(),
        sha256_hex(embedded.wasm).get(..12).unwrap_or_default(),
        engine::POLICY,
        active.file,
        active.bytes.len(),
        active.bundle.app.environment,
        short(active),
    );
    if let Some(s) = shadow {
        let _ = writeln!(out, "shadow: {} {} ({} bytes, revision {}…) decides every request too and enforces nothing", engine::SHADOW, s.file, s.bytes.len(), short(s));
    }
    out
}

/// The wrangler.toml lines a build needs.
fn snippet(main: &str, needs_limiter: bool) -> String {
    let mut out = format!(
        "main = \"{main}\"\ncompatibility_date = \"{}\"\nrules = [{{ type = \"Data\", globs = [\"{}\"], fallthrough = true }}]\n",
        engine::COMPATIBILITY_DATE,
        engine::DATA_RULE_GLOB
    );
    if needs_limiter {
        let _ = write!(
            out,
            "\n[[durable_objects.bindings]]\nname = \"{}\"\nclass_name = \"{}\"\n\n[[migrations]]\ntag = \"edgeguard-v1\"\nnew_sqlite_classes = [\"{}\"]\n",
            engine::LIMITER_BINDING,
            engine::LIMITER_CLASS,
            engine::LIMITER_CLASS
        );
    }
    out
}

/// `to` as a path relative to the directory `from`, with `/` separators (wrangler's `main`).
pub fn relative_to(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let normal = |p: PathBuf| -> Vec<String> {
        let mut parts: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                Component::ParentDir => {
                    parts.pop();
                }
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        parts
    };
    let (from, to) = (normal(abs(from)), normal(abs(to)));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out: Vec<String> = from.iter().skip(common).map(|_| "..".to_owned()).collect();
    out.extend(to.iter().skip(common).cloned());
    out.join("/")
}

/// Merge the worker's needs into a wrangler.toml, keeping everything else (comments included).
/// Returns what changed, in words.
fn merge_wrangler_toml(path: &Path, dir: &Path, bundle: &Bundle, needs_limiter: bool) -> Result<Vec<String>, Failure> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.ends_with(".json") || name.ends_with(".jsonc") {
        return Err(Failure::usage(format!("`{}`: edgeguard merges into wrangler.toml only; add the printed lines to your {name} by hand", path.display())));
    }
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Failure::usage(format!("cannot read `{}`: {e}", path.display()))),
    };
    let mut doc: DocumentMut = match &existing {
        Some(text) => text.parse().map_err(|e| Failure::usage(format!("`{}` is not valid TOML: {e}", path.display())))?,
        None => DocumentMut::new(),
    };
    let mut changes = Vec::new();
    if existing.is_none() {
        doc.insert("name", value(worker_name(&bundle.app.name)));
        changes.push("created".to_owned());
    }
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
    let main = relative_to(base, &dir.join(engine::ENTRY));
    if doc.get("main").and_then(Item::as_str) != Some(main.as_str()) {
        doc.insert("main", value(main.as_str()));
        changes.push(format!("main = \"{main}\""));
    }
    if doc.get("compatibility_date").is_none() {
        doc.insert("compatibility_date", value(engine::COMPATIBILITY_DATE));
        changes.push(format!("compatibility_date = \"{}\"", engine::COMPATIBILITY_DATE));
    }
    if !has_data_rule(&doc) {
        add_data_rule(&mut doc, path)?;
        changes.push(format!("a Data rule for {}", engine::DATA_RULE_GLOB));
    }
    if needs_limiter {
        changes.extend(add_limiter(&mut doc, path)?);
    }
    if !changes.is_empty() {
        output::write_atomically(path, doc.to_string().as_bytes())?;
    }
    Ok(changes)
}

/// A worker name from the app's: lowercase letters, digits and dashes.
fn worker_name(app: &str) -> String {
    let name: String = app.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let name = name.trim_matches('-');
    if name.is_empty() { "edgeguard".to_owned() } else { format!("{name}-edge") }
}

/// Each `[[rules]]` entry (array of tables or inline array) as (type, globs).
fn rules(doc: &DocumentMut) -> Vec<(String, Vec<String>)> {
    let strings = |a: Option<&Array>| a.map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
    match doc.get("rules") {
        Some(Item::ArrayOfTables(tables)) => tables
            .iter()
            .map(|t| (t.get("type").and_then(Item::as_str).unwrap_or_default().to_owned(), strings(t.get("globs").and_then(Item::as_array))))
            .collect(),
        Some(item) => item
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_inline_table())
                    .map(|t| (t.get("type").and_then(|v| v.as_str()).unwrap_or_default().to_owned(), strings(t.get("globs").and_then(|v| v.as_array()))))
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    }
}

/// Whether some Data rule's glob takes `.egb` files.
pub fn has_data_rule(doc: &DocumentMut) -> bool {
    rules(doc).iter().any(|(kind, globs)| kind == "Data" && globs.iter().any(|g| g.ends_with(".egb")))
}

fn add_data_rule(doc: &mut DocumentMut, path: &Path) -> Result<(), Failure> {
    let mut globs = Array::new();
    globs.push(engine::DATA_RULE_GLOB);
    match doc.get_mut("rules") {
        None => {
            let mut t = Table::new();
            t.insert("type", value("Data"));
            t.insert("globs", value(globs));
            t.insert("fallthrough", value(true));
            let mut list = ArrayOfTables::new();
            list.push(t);
            doc.insert("rules", Item::ArrayOfTables(list));
        }
        Some(Item::ArrayOfTables(list)) => {
            let mut t = Table::new();
            t.insert("type", value("Data"));
            t.insert("globs", value(globs));
            t.insert("fallthrough", value(true));
            list.push(t);
        }
        Some(item) => {
            let Some(list) = item.as_array_mut() else {
                return Err(Failure::usage(format!("`{}`: `rules` is neither an array nor [[rules]] tables", path.display())));
            };
            let mut t = InlineTable::new();
            t.insert("type", "Data".into());
            t.insert("globs", globs.into());
            t.insert("fallthrough", true.into());
            list.push(t);
        }
    }
    Ok(())
}

/// The Durable Object binding and migration a global limit needs, when missing.
fn add_limiter(doc: &mut DocumentMut, path: &Path) -> Result<Vec<String>, Failure> {
    let bad = |what: &str| Failure::usage(format!("`{}`: `{what}` has an unexpected shape; add the printed lines by hand", path.display()));
    let mut changes = Vec::new();
    let durable = doc.entry("durable_objects").or_insert(Item::Table(Table::new()));
    let durable = durable.as_table_mut().ok_or_else(|| bad("durable_objects"))?;
    durable.set_implicit(true);
    let bindings = durable.entry("bindings").or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    let bindings = bindings.as_array_of_tables_mut().ok_or_else(|| bad("durable_objects.bindings"))?;
    let bound = bindings.iter().any(|t| t.get("class_name").and_then(Item::as_str) == Some(engine::LIMITER_CLASS));
    if !bound {
        let mut t = Table::new();
        t.insert("name", value(engine::LIMITER_BINDING));
        t.insert("class_name", value(engine::LIMITER_CLASS));
        bindings.push(t);
        changes.push(format!("the {} Durable Object binding", engine::LIMITER_BINDING));
    }
    let migrations = doc.entry("migrations").or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    let migrations = migrations.as_array_of_tables_mut().ok_or_else(|| bad("migrations"))?;
    let migrated = migrations.iter().any(|t| {
        ["new_sqlite_classes", "new_classes"]
            .iter()
            .any(|k| t.get(k).and_then(Item::as_array).is_some_and(|a| a.iter().any(|v| v.as_str() == Some(engine::LIMITER_CLASS))))
    });
    if !migrated {
        let mut classes = Array::new();
        classes.push(engine::LIMITER_CLASS);
        let mut t = Table::new();
        t.insert("tag", value("edgeguard-v1"));
        t.insert("new_sqlite_classes", value(classes));
        migrations.push(t);
        changes.push(format!("a migration creating {}", engine::LIMITER_CLASS));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative_to(Path::new("/a/b"), Path::new("/a/b/edge/index.mjs")), "edge/index.mjs");
        assert_eq!(relative_to(Path::new("/a/b"), Path::new("/a/c/index.mjs")), "../c/index.mjs");
        assert_eq!(relative_to(Path::new("/a/b/"), Path::new("/a/b/./x/../edge/index.mjs")), "edge/index.mjs");
    }

    #[test]
    fn worker_names() {
        assert_eq!(worker_name("quotekit"), "quotekit-edge");
        assert_eq!(worker_name("Quote Kit!"), "quote-kit-edge");
        assert_eq!(worker_name("--"), "edgeguard");
    }

    #[test]
    fn data_rule_in_either_shape() {
        for text in [
            "rules = [{ type = \"Data\", globs = [\"**/*.egb\"] }]",
            "[[rules]]\ntype = \"Data\"\nglobs = [\"policy/*.egb\"]\n",
        ] {
            assert!(has_data_rule(&text.parse().unwrap_or_default()), "{text}");
        }
        for text in ["", "rules = [{ type = \"Text\", globs = [\"**/*.egb\"] }]", "[[rules]]\ntype = \"Data\"\nglobs = [\"**/*.bin\"]\n"] {
            assert!(!has_data_rule(&text.parse().unwrap_or_default()), "{text}");
        }
    }
}
