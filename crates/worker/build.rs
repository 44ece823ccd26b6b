//! Compiles the policy into the bundle the worker embeds: a policy error is a build error.
//! `EDGEGUARD_POLICY=path` picks the policy (default fixtures/quotekit.toml),
//! `EDGEGUARD_ENV=name` the environment (default: the policy's `app.environment`).

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let policy = match std::env::var("EDGEGUARD_POLICY") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => manifest.join("../../fixtures/quotekit.toml"),
    };
    println!("cargo:rerun-if-env-changed=EDGEGUARD_POLICY");
    println!("cargo:rerun-if-env-changed=EDGEGUARD_ENV");
    println!("cargo:rerun-if-changed={}", policy.display());
    let bytes = match std::fs::read(&policy) {
        Ok(b) => b,
        Err(e) => fail(&format!("cannot read policy `{}`: {e}", policy.display())),
    };
    let env = std::env::var("EDGEGUARD_ENV").ok().filter(|e| !e.is_empty());
    let out = edgeguard_compiler::compile_bytes(&bytes, &edgeguard_compiler::Options { env });
    let source = String::from_utf8_lossy(&bytes);
    let file = policy.display().to_string();
    // Errors in full (they fail the build); warnings as one line — `edgeguard check` shows them.
    for d in out.diagnostics.iter().filter(|d| d.is_error()) {
        let l = d.locate(&file, &source);
        let help = d.help.as_deref().map(|h| format!(" (help: {h})")).unwrap_or_default();
        println!("cargo:warning=error[{}] {}:{}:{}: {}{help}", l.code, l.file, l.line, l.column, l.message);
    }
    let warnings = out.diagnostics.iter().filter(|d| !d.is_error()).count();
    if warnings > 0 && out.bundle.is_some() {
        println!("cargo:warning=policy {file}: {warnings} warning(s); run `edgeguard check {file}` to see them");
    }
    let Some(bundle) = out.bundle else { fail(&format!("policy `{file}` has errors; run `edgeguard check {file}`")) };
    let encoded = match bundle.to_bytes() {
        Ok(b) => b,
        Err(e) => fail(&format!("cannot encode the bundle: {e}")),
    };
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("policy.egb"), encoded) {
        fail(&format!("cannot write the bundle: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("edgeguard: {message}");
    std::process::exit(1)
}
