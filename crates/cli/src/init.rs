//! `edgeguard init`: a commented starter policy.

use std::path::PathBuf;

use crate::{CmdResult, Status, output};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// helmet's security headers, https redirect and HSTS, one origin.
    Helmet,
    /// A Next.js app on Fly.io: hosts, client IP, CSP, limits, static assets, webhook,
    /// blocked debug routes, blue/green origins and health.
    NextjsFly,
}

impl Preset {
    pub fn source(self) -> &'static str {
        match self {
            Preset::Helmet => include_str!("starters/helmet.toml"),
            Preset::NextjsFly => include_str!("starters/nextjs-fly.toml"),
        }
    }
}

/// Print or write a commented starter policy.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    edgeguard init --preset helmet                  # print to stdout\n  \
    edgeguard init --preset nextjs-fly -o policy.toml\n  \
    edgeguard init --preset nextjs-fly -o policy.toml --force   # overwrite")]
pub struct Args {
    /// Which starter.
    #[arg(long, value_enum)]
    pub preset: Preset,
    /// Write to FILE instead of stdout; an existing FILE is kept unless --force.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
}

pub fn run(args: &Args) -> CmdResult {
    let source = args.preset.source();
    match &args.output {
        None => output::print(source)?,
        Some(path) => {
            output::write_new(path, source.as_bytes(), args.force)?;
            output::print(&format!("wrote {}; next: edgeguard check {}\n", path.display(), path.display()))?;
        }
    }
    Ok(Status::Success)
}
