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
    println!("cargo:rustc-env=EDGEGUARD_ENGINE_DIR={}", dir.display());
    println!("cargo:rustc-cfg=edgeguard_engine");
}

fn fail(message: &str) -> ! {
    eprintln!("edgeguard: {message}");
    std::process::exit(1)
}
