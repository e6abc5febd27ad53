//! Not written yet: see the open issues.

use crate::cli::Global;
use crate::error::{Error, ExitCode, Result};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _global: &Global) -> Result<ExitCode> {
    Err(Error::new(ExitCode::Internal, "this command is not implemented yet"))
}
