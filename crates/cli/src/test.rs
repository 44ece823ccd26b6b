//! `edgeguard test` (being built).

use crate::{CmdResult, Failure};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> CmdResult {
    Err(Failure::usage("`test` is not available yet"))
}
