//! `edgeguard build`: a deployable worker directory for a policy — the prebuilt engine this
//! binary carries, the policy's bundle and an entry module — with no compiler toolchain.
//!
//! The engine is built once per edgeguard version; a policy change is a new bundle next to the
//! same engine bytes. Every bundle written is loaded back with the engine's own loader before
//! the command succeeds, so a directory `build` wrote never serves 503 `edge-misconfigured`.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use edgeguard_core::observe::short_revision;
use edgeguard_core::{Bundle, Engine};
use serde::Serialize;

use crate::engine::{self, Embedded};
use crate::wrangler;
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
    let dir = &args.output;
    check_dir(dir)?;
    // The wrangler.toml merge is worked out in memory first: a file it cannot edit fails the
    // command before the directory is touched.
    let wrangler = args.wrangler_toml.as_deref().map(|path| plan_wrangler(path, args, &active)).transpose()?;

    let mut files: Vec<(&str, &[u8])> = vec![
        (engine::WASM, embedded.wasm),
        (engine::GLUE, embedded.glue.as_bytes()),
        (engine::SHELL, embedded.shell.as_bytes()),
        (engine::POLICY, &active.bytes),
    ];
    if let Some(s) = &shadow {
        files.push((engine::SHADOW, &s.bytes));
    }
    let entry = engine::entry_module(shadow.is_some());
    // The engine's SHA-256 (560 KB hashed once): the manifest records it, the summary shows it.
    let engine_sha256 = sha256_hex(embedded.wasm);
    let manifest = manifest(&engine_sha256, &active, shadow.as_ref());
    files.push((engine::ENTRY, entry.as_bytes()));
    files.push((engine::MANIFEST, manifest.as_bytes()));
    replace_dir(dir, &files)?;

    let mut out = summary(dir, &embedded, &engine_sha256, &active, shadow.as_ref());
    match wrangler {
        Some((path, text, changes)) => {
            if !changes.is_empty() {
                output::write_atomically(&path, text.as_bytes())?;
            }
            let _ = writeln!(out, "{}: {}", path.display(), if changes.is_empty() { "already up to date".to_owned() } else { changes.join(", ") });
        }
        None => {
            let main = relative_to(Path::new("."), &dir.join(engine::ENTRY));
            let env = wrangler_env(args, &active)?;
            let needs = wrangler::Needs { main: &main, env: env.as_deref(), limiter: has_global_limits(&active.bundle), stats: active.bundle.stats.enabled, app: &active.bundle.app.name };
            let _ = write!(out, "\nwrangler.toml needs (or pass --wrangler-toml wrangler.toml):\n\n{}", wrangler::snippet(&needs));
        }
    }
    output::print(&out)?;
    Ok(Status::Success)
}

/// The wrangler environment a build belongs in: none (the top level, what a plain `wrangler
/// deploy` ships) for the policy's own environment, `[env.NAME]` for an overlay (`--env`).
fn wrangler_env(args: &Args, active: &Built) -> Result<Option<String>, Failure> {
    let Some(env) = args.env.as_deref() else { return Ok(None) };
    let own = policy::load(&args.policy, None)?.output.bundle.map(|b| b.app.environment);
    Ok((own.as_deref() != Some(env)).then(|| active.bundle.app.environment.clone()))
}

/// The merged wrangler.toml (path, text, what changed), not written yet.
fn plan_wrangler(path: &Path, args: &Args, active: &Built) -> Result<(PathBuf, String, Vec<String>), Failure> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.ends_with(".json") || name.ends_with(".jsonc") {
        return Err(Failure::usage(format!(
            "`{}`: edgeguard merges into wrangler.toml only; run without --wrangler-toml and add the printed lines to your {name} by hand",
            path.display()
        )));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Failure::usage(format!("cannot read `{}`: {e}", path.display()))),
    };
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
    let main = relative_to(base, &args.output.join(engine::ENTRY));
    let env = wrangler_env(args, active)?;
    let needs = wrangler::Needs { main: &main, env: env.as_deref(), limiter: has_global_limits(&active.bundle), stats: active.bundle.stats.enabled, app: &active.bundle.app.name };
    let (merged, changes) = wrangler::merge(path, text.as_deref(), &needs)?;
    Ok((path.to_path_buf(), merged, changes))
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

/// An existing output directory must be an earlier build — it holds only the files a build
/// writes — so a mistyped `-o` never replaces someone's files.
fn check_dir(dir: &Path) -> Result<(), Failure> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Err(Failure::usage(format!("`{}` is a file, not a directory", dir.display()))),
        Err(e) => return Err(Failure::usage(format!("cannot read `{}`: {e}", dir.display()))),
    };
    let foreign = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(|name| !engine::FILES.contains(&name.as_str()));
    match foreign {
        Some(name) => Err(Failure::usage(format!(
            "`{}` exists and is not an edgeguard build directory (it holds `{name}`); pass a new or empty directory",
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// Write `files` into a sibling temporary directory, then put it in the place of `dir` (an
/// earlier build is moved aside and removed): an interrupted build never leaves a directory
/// with half its files, and wrangler never bundles a mix of two builds.
fn replace_dir(dir: &Path, files: &[(&str, &[u8])]) -> Result<(), Failure> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "edge".to_owned());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Failure::usage(format!("cannot create `{}`: {e}", parent.display())))?;
    let unique = getrandom::u64().map_err(|e| Failure::usage(format!("no random name for a temporary directory: {e}")))?;
    let fresh = parent.join(format!(".{name}.{unique:016x}.new"));
    let stale = parent.join(format!(".{name}.{unique:016x}.old"));
    let failed = |e: std::io::Error, what: &Path| Failure::usage(format!("cannot write `{}`: {e}", what.display()));
    let written = std::fs::create_dir(&fresh)
        .and_then(|()| files.iter().try_for_each(|(file, bytes)| std::fs::write(fresh.join(file), bytes)))
        .map_err(|e| failed(e, &fresh));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(e);
    }
    let had_one = dir.exists();
    if had_one && let Err(e) = std::fs::rename(dir, &stale) {
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(failed(e, dir));
    }
    if let Err(e) = std::fs::rename(&fresh, dir) {
        // Put the earlier build back rather than leave nothing.
        let _ = had_one && std::fs::rename(&stale, dir).is_ok();
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(failed(e, dir));
    }
    if had_one {
        let _ = std::fs::remove_dir_all(&stale);
    }
    Ok(())
}

fn has_global_limits(bundle: &Bundle) -> bool {
    bundle.limits.iter().any(|l| l.scope == edgeguard_core::bundle::Scope::Global)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    edgeguard_core::bundle::hex(&Sha256::digest(bytes))
}

fn manifest(engine_sha256: &str, active: &Built, shadow: Option<&Built>) -> String {
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
        engine: EngineEntry { file: engine::WASM, sha256: engine_sha256.to_owned(), format: edgeguard_core::FORMAT_VERSION },
        policy: entry(engine::POLICY, active),
        shadow: shadow.map(|s| entry(engine::SHADOW, s)),
    };
    let mut json = serde_json::to_string_pretty(&m).unwrap_or_default();
    json.push('\n');
    json
}

fn summary(dir: &Path, embedded: &Embedded, engine_sha256: &str, active: &Built, shadow: Option<&Built>) -> String {
    fn short(b: &Built) -> &str {
        short_revision(&b.bundle)
    }
    let mut out = format!(
        "wrote {} — engine {} ({} bytes, sha256 {}…), {} {} ({} bytes, environment {}, revision {}…)\n",
        dir.display(),
        env!("CARGO_PKG_VERSION"),
        embedded.wasm.len(),
        engine_sha256.get(..12).unwrap_or_default(),
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

/// `to` as a path relative to the directory `from`, with `/` separators (wrangler's `main`).
fn relative_to(from: &Path, to: &Path) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative_to(Path::new("/a/b"), Path::new("/a/b/edge/index.mjs")), "edge/index.mjs");
        assert_eq!(relative_to(Path::new("/a/b"), Path::new("/a/c/index.mjs")), "../c/index.mjs");
        assert_eq!(relative_to(Path::new("/a/b/"), Path::new("/a/b/./x/../edge/index.mjs")), "edge/index.mjs");
    }

}
