//! `edgeguard schema`: the policy language's JSON Schema, for editors.

use crate::{CmdResult, Status, check, output};

/// Print the JSON Schema of policy files.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    edgeguard schema > edgeguard.schema.json\n\n\
    With taplo / Even Better TOML, put `#:schema ./edgeguard.schema.json` on the policy's first line.")]
pub struct Args {}

pub fn run(_args: &Args) -> CmdResult {
    let schema = edgeguard_compiler::model::schema();
    output::print(&format!("{}\n", check::pretty(&schema)))?;
    Ok(Status::Success)
}
