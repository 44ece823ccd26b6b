//! The prebuilt engine this binary carries, and the layout of a worker directory
//! `edgeguard build` writes around it. `doctor` reads the same layout back.
//!
//! ```text
//! DIR/index.mjs        the entry (main): imports the bundles and the shell
//! DIR/shell.mjs        the JS shell        ┐
//! DIR/engine.js        wasm-bindgen glue   ├ the same bytes for every policy
//! DIR/engine_bg.wasm   the engine          ┘
//! DIR/policy.egb       the policy bundle (a Data module)
//! DIR/shadow.egb       a candidate policy (--shadow), when there is one
//! DIR/edgeguard.json   what was built: versions, revisions, digests
//! ```

/// The entry module, `main` in wrangler.toml.
pub const ENTRY: &str = "index.mjs";
pub const SHELL: &str = "shell.mjs";
pub const GLUE: &str = "engine.js";
pub const WASM: &str = "engine_bg.wasm";
pub const POLICY: &str = "policy.egb";
pub const SHADOW: &str = "shadow.egb";
pub const MANIFEST: &str = "edgeguard.json";
/// Every file a build directory may hold.
pub const FILES: [&str; 7] = [ENTRY, SHELL, GLUE, WASM, POLICY, SHADOW, MANIFEST];

/// The wrangler module rule that uploads bundles as Data modules (wrangler has no default rule
/// for `.egb`).
pub const DATA_RULE_GLOB: &str = "**/*.egb";

/// The Durable Object class that counts `scope = "global"` limits (exported by the shell).
pub const LIMITER_CLASS: &str = "EdgeguardLimiter";
/// The binding name the shell looks the limiter up by.
pub const LIMITER_BINDING: &str = "EDGEGUARD_LIMITER";

/// The Durable Object class that merges the fleet statistics (`[stats]`, `[slo]`), exported
/// by the shell, and its binding.
pub const STATS_CLASS: &str = "EdgeguardStats";
pub const STATS_BINDING: &str = "EDGEGUARD_STATS";

/// The compatibility date the worker is tested with.
pub const COMPATIBILITY_DATE: &str = "2025-09-01";

/// The engine's files, as `scripts/build-engine.sh` wrote them when this binary was built.
pub struct Embedded {
    pub wasm: &'static [u8],
    pub glue: &'static str,
    pub shell: &'static str,
}

/// The engine inside this binary; `None` for a CLI built without one (`build` then refuses).
#[cfg(edgeguard_engine)]
pub const EMBEDDED: Option<Embedded> = Some(Embedded {
    wasm: include_bytes!(concat!(env!("EDGEGUARD_ENGINE_DIR"), "/engine_bg.wasm")),
    glue: include_str!(concat!(env!("EDGEGUARD_ENGINE_DIR"), "/engine.js")),
    shell: include_str!(concat!(env!("EDGEGUARD_ENGINE_DIR"), "/shell.mjs")),
});
#[cfg(not(edgeguard_engine))]
pub const EMBEDDED: Option<Embedded> = None;

/// The entry module: the bundles as Data modules, handed to the shell once per isolate.
pub fn entry_module(shadow: bool) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut out = format!(
        "// Written by `edgeguard build` (edgeguard {version}). The engine and shell are the same bytes for\n\
         // every policy; {POLICY} is this deployment's policy. Rebuild, do not edit.\n\
         import policy from \"./{POLICY}\";\n"
    );
    if shadow {
        out.push_str(&format!("import shadow from \"./{SHADOW}\";\n"));
    }
    out.push_str(&format!("import {{ edgeguard, {LIMITER_CLASS}, {STATS_CLASS} }} from \"./{SHELL}\";\n\n"));
    out.push_str(&format!("export {{ {LIMITER_CLASS}, {STATS_CLASS} }};\n"));
    out.push_str(if shadow { "export default edgeguard({ policy, shadow });\n" } else { "export default edgeguard({ policy });\n" });
    out
}
