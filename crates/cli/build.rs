//! Embeds the prebuilt engine (`engine/`: the worker's wasm, its glue and the JS shell, written
//! by `scripts/build-engine.sh`) so `edgeguard build` writes a deployable worker with no Rust
//! toolchain at hand. A CLI built without it still runs every other command; `build` then
//! says how to get the engine.
//!
//! The engine declares the bundle format it reads in its wasm (custom section
//! `edgeguard-engine`); an engine built from another edgeguard than this CLI fails the build,
//! so a CLI can never write bundles its own engine refuses.

use std::path::PathBuf;

#[path = "src/engine_section.rs"]
mod engine_section;

const FILES: [&str; 3] = ["engine_bg.wasm", "engine.js", "shell.mjs"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = match std::env::var("EDGEGUARD_ENGINE_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => manifest.join("engine"),
    };
    // Absolute: include_bytes! resolves a relative path against src/engine.rs, not this crate.
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    println!("cargo:rerun-if-env-changed=EDGEGUARD_ENGINE_DIR");
    println!("cargo:rustc-check-cfg=cfg(edgeguard_engine)");
    for f in FILES {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    if !FILES.iter().all(|f| dir.join(f).is_file()) {
        println!("cargo:warning=no engine in {}: `edgeguard build` is disabled in this binary (run scripts/build-engine.sh, or `make engine`)", dir.display());
        return;
    }
    let wasm = match std::fs::read(dir.join("engine_bg.wasm")) {
        Ok(bytes) => bytes,
        Err(e) => fail(&format!("cannot read the engine: {e}")),
    };
    match engine_section::read(&wasm) {
        Some(e) if e.format == edgeguard_core::FORMAT_VERSION && e.version == env!("CARGO_PKG_VERSION") => {}
        Some(engine_section::EngineSection { format, version }) => fail(&format!(
            "the engine in {} is edgeguard {version} reading bundle format {format}; this CLI is {} writing format {}: rebuild it with scripts/build-engine.sh",
            dir.display(),
            env!("CARGO_PKG_VERSION"),
            edgeguard_core::FORMAT_VERSION
        )),
        None => fail(&format!("{} is not an edgeguard engine (no edgeguard-engine section)", dir.join("engine_bg.wasm").display())),
    }
    warn_if_stale(&manifest, &dir);
    println!("cargo:rustc-env=EDGEGUARD_ENGINE_DIR={}", dir.display());
    println!("cargo:rustc-cfg=edgeguard_engine");
}

/// In the edgeguard repository, an engine older than the worker's or core's sources (or a shell
/// that differs from crates/worker/js/shell.mjs) is embedded with a warning: `make engine`
/// rebuilds it. A packaged crate has no such sources, and nothing to compare.
fn warn_if_stale(manifest: &std::path::Path, dir: &std::path::Path) {
    let worker = manifest.join("../worker");
    let sources = [worker.join("src"), worker.join("js"), worker.join("Cargo.toml"), manifest.join("../core/src"), manifest.join("../core/Cargo.toml")];
    if !worker.is_dir() {
        return;
    }
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }
    let shell_differs = std::fs::read(worker.join("js/shell.mjs")).ok() != std::fs::read(dir.join("shell.mjs")).ok();
    // scripts/build-engine.sh touches .built on every run, even when the bytes came out the same
    // (and so were not copied, to spare the CLI a rebuild).
    let built = [".built", "engine_bg.wasm"].iter().find_map(|f| std::fs::metadata(dir.join(f)).and_then(|m| m.modified()).ok());
    let newest = sources.iter().filter_map(|s| newest_mtime(s)).max();
    let older = matches!((built, newest), (Some(b), Some(n)) if n > b);
    if shell_differs || older {
        println!("cargo:warning=the engine in {} is older than crates/worker or crates/core: `edgeguard build` would write the old one; run `make engine`", dir.display());
    }
}

fn newest_mtime(path: &std::path::Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.flatten().filter_map(|e| newest_mtime(&e.path())).max()
}

fn fail(message: &str) -> ! {
    eprintln!("edgeguard: {message}");
    std::process::exit(1)
}
