//! `edgeguard compile`: check a policy, then write its bundle.

use std::path::PathBuf;

use crate::render::{self, Counts, Stream};
use crate::{CmdResult, Failure, Status, output, policy};

/// Compile a policy into a bundle the edge worker loads.
#[derive(Debug, clap::Args)]
#[command(after_help = "Diagnostics go to stderr; nothing is written when the policy has errors \
    (or warnings with --deny-warnings), and an existing BUNDLE is left as it was. Otherwise BUNDLE \
    is written, or replaced, atomically, byte-identical for the same policy and environment.\n\n\
    Examples:\n  \
    edgeguard compile policy.toml -o policy.bundle\n  \
    edgeguard compile policy.toml -o staging.bundle --env staging --deny-warnings")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// Where to write the bundle (an existing file is replaced).
    #[arg(short, long, value_name = "BUNDLE")]
    pub output: PathBuf,
    /// Compile for this environment (overrides `app.environment`, picks `[env.NAME]`).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Refuse to write a bundle when there are warnings.
    #[arg(long)]
    pub deny_warnings: bool,
}

pub fn run(args: &Args) -> CmdResult {
    let compiled = policy::load(&args.policy, args.env.as_deref())?;
    let diags = &compiled.output.diagnostics;
    let counts = Counts::of(diags);
    if !diags.is_empty() {
        render::text(Stream::Stderr, &compiled.file, &compiled.source, diags)?;
        output::eprint(&render::summary(&compiled.file, counts, args.deny_warnings));
    }
    if counts.fail(args.deny_warnings) {
        return Ok(Status::Failed);
    }
    let Some(bundle) = compiled.output.bundle.as_ref() else {
        return Err(Failure::failed(format!(
            "`{}` compiled without errors but no bundle was produced (a bug in edgeguard)",
            compiled.file
        )));
    };
    let bytes = bundle.to_bytes().map_err(|e| Failure::failed(format!("cannot encode the bundle: {e}")))?;
    output::write_atomically(&args.output, &bytes)?;
    let short: String = bundle.revision.chars().take(12).collect();
    output::print(&format!("wrote {} ({} bytes, revision {short}…)\n", args.output.display(), bytes.len()))?;
    Ok(Status::Success)
}
