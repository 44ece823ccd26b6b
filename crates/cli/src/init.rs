//! `edgeguard init`: a commented starter policy, or one proposed from a live site's response
//! headers (`--from-headers`, [`edgeguard_compiler::site`]).

use std::path::PathBuf;

use crate::{CmdResult, Failure, Status, output};

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
    edgeguard init --preset nextjs-fly -o policy.toml --force   # overwrite\n  \
    curl -sI https://your.site/ > headers.txt && edgeguard init --from-headers headers.txt -o policy.toml")]
#[command(group(clap::ArgGroup::new("start").required(true).args(["preset", "from_headers"])))]
pub struct Args {
    /// Which starter.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Start from a live site's response headers: FILE holds `curl -sI URL` output or a HAR
    /// file. The policy keeps what the headers do right (their CSP as [csp.directives], HSTS,
    /// deliberate differences from helmet as [headers.set]) and fixes the rest.
    #[arg(long, value_name = "FILE")]
    pub from_headers: Option<PathBuf>,
    /// Write to FILE instead of stdout; an existing FILE is kept unless --force.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
}

pub fn run(args: &Args) -> CmdResult {
    let proposed;
    let source = match (&args.from_headers, args.preset) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
            let site = edgeguard_compiler::site::parse(&text).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
            let proposal = edgeguard_compiler::site::propose(&site);
            // What was kept and changed, on stderr: stdout is the policy alone.
            let notes: String = proposal
                .kept
                .iter()
                .map(|l| format!("kept: {l}\n"))
                .chain(proposal.changed.iter().map(|l| format!("changed: {l}\n")))
                .collect();
            output::eprint(&notes);
            proposed = proposal.policy;
            proposed.as_str()
        }
        (None, Some(preset)) => preset.source(),
        (None, None) => return Err(Failure::usage("pass --preset or --from-headers")),
    };
    match &args.output {
        None => output::print(source)?,
        Some(path) => {
            output::write_new(path, source.as_bytes(), args.force)?;
            output::print(&format!("wrote {}; next: edgeguard check {}\n", path.display(), path.display()))?;
        }
    }
    Ok(Status::Success)
}
