//! `edgeguard schema`: the policy language's JSON Schema, or the environment catalog's, for
//! editors.

use crate::{CmdResult, Status, catalog, check, output};

/// Print the JSON Schema of policy files (or, with --catalog, of environment catalogs).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    edgeguard schema > edgeguard.schema.json\n  \
    edgeguard schema --catalog > edgeguard-env.schema.json\n\n\
    With taplo / Even Better TOML, put `#:schema ./edgeguard.schema.json` on the policy's first line.")]
pub struct Args {
    /// The environment catalog's schema (docs/env-catalog.md) instead of the policy's.
    #[arg(long)]
    pub catalog: bool,
}

pub fn run(args: &Args) -> CmdResult {
    let schema = if args.catalog { catalog::schema() } else { edgeguard_compiler::model::schema() };
    output::print(&format!("{}\n", check::pretty(&schema)))?;
    Ok(Status::Success)
}
