//! `edgeguard`: check, compile and explain edgeguard policies.
//!
//! This file is only glue: argument parsing and exit codes. Each command lives in its own
//! module; diagnostics rendering is in [`render`].
//!
//! Exit codes, for every command: 0 success, 1 the policy (or a test) failed, 2 usage error
//! (bad flags, unreadable files, an output that cannot be written, or one that `init` without
//! `--force` or `build` will not replace). `compile` replaces its own output.

mod build;
mod catalog;
mod check;
mod compile;
mod diff;
mod doctor;
mod engine;
mod engine_section;
mod envcheck;
mod explain;
mod import;
mod init;
mod nonce;
mod output;
mod policy;
mod ready;
mod render;
mod sarif;
mod schema;
mod test;
mod verify;
mod wrangler;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Success,
    /// Exit 1: the policy has errors (or warnings under `--deny-warnings`), or a test failed.
    Failed,
    /// Exit 2: the command line or its files are unusable.
    Usage,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(match s {
            Status::Success => 0,
            Status::Failed => 1,
            Status::Usage => 2,
        })
    }
}

/// A command that could not do its job: printed as `error: MESSAGE` on stderr.
#[derive(Debug)]
pub struct Failure {
    pub status: Status,
    pub message: String,
}

impl Failure {
    /// Exit 2: bad arguments, unreadable input, unwritable output.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { status: Status::Usage, message: message.into() }
    }

    /// Exit 1: the policy failed.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure { status: Status::Failed, message: message.into() }
    }
}

pub type CmdResult = Result<Status, Failure>;

#[derive(Parser)]
#[command(
    name = "edgeguard",
    version,
    about = "Check, compile and explain edgeguard edge-security policies",
    long_about = "Check, compile and explain edgeguard edge-security policies.\n\n\
        Exit codes, for every command: 0 success, 1 the policy failed (errors, or warnings \
        with --deny-warnings), 2 usage error (bad flags, a file that cannot be read or written).",
    after_help = "Examples:\n  \
        edgeguard init --preset nextjs-fly -o policy.toml\n  \
        edgeguard check policy.toml\n  \
        edgeguard build policy.toml -o edge            # engine + bundle: deploy with wrangler\n  \
        edgeguard explain policy.toml --request 'GET https://example.com/api/health'"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Check(check::Args),
    Compile(compile::Args),
    /// A deployable worker for a policy: the prebuilt engine, the policy bundle, an entry module.
    Build(build::Args),
    Explain(explain::Args),
    Schema(schema::Args),
    Init(init::Args),
    /// Run policy test cases (TOML) through the engine.
    Test(test::Args),
    /// Semantic diff of two policies or bundles, with a security verdict per change.
    Diff(diff::Args),
    /// Check a policy against the deployment around it (wrangler.toml, fly.toml).
    Doctor(doctor::Args),
    /// Bring a policy's routes up to date with an app's (`import next APP_DIR --policy POLICY`).
    Import(import::Args),
    /// A page as the edge sends it under `[csp] strict = "nonce"` (nonce on every script and style).
    Nonce(nonce::Args),
    /// The deployment roadmap's gates as a go/no-go report (pass/fail/unknown, each with where).
    Ready(ready::Args),
    /// A few requests to a deployed edge, each compared with what `explain` says (bounded).
    Verify(verify::Args),
}

fn main() -> ExitCode {
    // Under WASI (the npm package runs this binary as wasm in Node) there is no working
    // directory; the launcher passes its own as PWD, so relative paths mean what they mean
    // to the native binary.
    #[cfg(target_os = "wasi")]
    if let Ok(pwd) = std::env::var("PWD")
        && let Err(e) = std::env::set_current_dir(&pwd)
    {
        output::eprint(&format!("error: cannot work in `{pwd}` under WASI: {}\n", output::without_os_codes(&e.to_string())));
        return Status::Usage.into();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Compile(args) => compile::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Nonce(args) => nonce::run(&args),
        Command::Ready(args) => ready::run(&args),
        Command::Verify(args) => verify::run(&args),
    };
    match result {
        Ok(status) => status.into(),
        Err(failure) => {
            output::eprint(&format!("error: {}\n", output::without_os_codes(&failure.message)));
            failure.status.into()
        }
    }
}
