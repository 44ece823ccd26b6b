//! `edgeguard check`: compile a policy and report every diagnostic.

use std::path::PathBuf;

use crate::render::{self, Counts, Stream};
use crate::{CmdResult, Status, output, policy};

/// How `check` prints diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Rendered source snippets, then a summary line.
    Text,
    /// One JSON object: { file, ok, errors, warnings, diagnostics: [...] }.
    Json,
    /// GitHub Actions workflow commands (`::error file=...::message`), one per diagnostic.
    Github,
    /// A SARIF 2.1.0 log (one result per diagnostic, rule id = code), for code scanning.
    Sarif,
}

/// Check a policy: print every error and warning, exit 1 if any error.
#[derive(Debug, clap::Args)]
#[command(after_help = "Output goes to stdout. With --format github or sarif the summary line goes to \
    stderr; with --format json there is only the JSON object.\n\n\
    Examples:\n  \
    edgeguard check policy.toml\n  \
    edgeguard check policy.toml --env staging --deny-warnings\n  \
    edgeguard check policy.toml --format github    # annotations in a GitHub Actions step\n  \
    edgeguard check policy.toml --format sarif > edgeguard.sarif   # for code scanning\n  \
    edgeguard check policy.toml --format json | jq '.diagnostics[].code'")]
pub struct Args {
    /// The policy file (TOML).
    pub policy: PathBuf,
    /// Compile for this environment (overrides `app.environment`, picks `[env.NAME]`).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Treat warnings as errors for the exit code.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &Args) -> CmdResult {
    let compiled = policy::load(&args.policy, args.env.as_deref())?;
    let diags = &compiled.output.diagnostics;
    let counts = Counts::of(diags);
    let summary = render::summary(&compiled.file, counts, args.deny_warnings);
    match args.format {
        Format::Text => {
            render::text(Stream::Stdout, &compiled.file, &compiled.source, diags)?;
            output::print(&summary)?;
        }
        Format::Json => {
            output::print(&render::json(&compiled.file, &compiled.source, diags, args.deny_warnings)?)?;
        }
        Format::Github => {
            output::print(&render::github(&compiled.file, &compiled.source, diags))?;
            output::eprint(&summary);
        }
        Format::Sarif => {
            output::print(&render::sarif(&compiled.file, &compiled.source, diags))?;
            output::eprint(&summary);
        }
    }
    Ok(if counts.fail(args.deny_warnings) { Status::Failed } else { Status::Success })
}

/// Pretty JSON; serializing a `serde_json::Value` cannot fail, `Display` is the fallback anyway.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
