//! Reading a policy file and compiling it: shared by every command that takes a POLICY.

use std::path::Path;

use edgeguard_compiler::{Options, Output};

use crate::Failure;

/// A policy read from disk and compiled.
pub struct Compiled {
    /// The path as the user wrote it; used in every diagnostic.
    pub file: String,
    pub source: String,
    pub output: Output,
}

/// Read a policy file. A file that cannot be read is a usage error (exit 2); bytes that are not
/// a policy (binary, not UTF-8) are the compiler's to diagnose (E007, exit 1).
pub fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", path.display())))
}

/// Read and compile, for `env` when given (overrides `app.environment`).
pub fn load(path: &Path, env: Option<&str>) -> Result<Compiled, Failure> {
    let bytes = read(path)?;
    // `[fallback] page_file` is read next to the policy (the current directory for `-`).
    let base_dir = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).map(Path::to_path_buf);
    let options = Options { env: env.map(str::to_owned), base_dir };
    let output = edgeguard_compiler::compile_bytes(&bytes, &options);
    let source = String::from_utf8_lossy(&bytes).into_owned();
    Ok(Compiled { file: path.display().to_string(), source, output })
}
