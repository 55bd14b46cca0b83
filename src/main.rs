//! The `hsm-acme` command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hsm_acme::cli::run(&hsm_acme::cli::Cli::parse())
}
