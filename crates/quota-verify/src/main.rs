//! `quota-verify`: the command line of the quota-verify harness.
//!
//! Exit codes are part of the interface (see `--help`): scripts and CI depend on them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod repro;

/// Verification harness for a quota tracker that must not lose updates.
#[derive(Debug, Parser)]
#[command(name = "quota-verify", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Repro(repro::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Repro(args) => repro::run(&args),
    }
}
