//! `quota-verify`: the command line of the quota-verify harness.
//!
//! Exit codes are part of the interface (see each command's `--help`): scripts and CI
//! depend on them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check_history;
#[cfg(feature = "dynamodb")]
mod fleet;
mod repro;
#[cfg(feature = "dynamodb")]
mod store_check;

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
    CheckHistory(check_history::Args),
    #[cfg(feature = "dynamodb")]
    StoreCheck(store_check::Args),
    #[cfg(feature = "dynamodb")]
    Fleet(fleet::Args),
    /// A worker process of `fleet` (started by it).
    #[cfg(feature = "dynamodb")]
    #[command(hide = true)]
    FleetWorker(fleet::WorkerArgs),
    /// Qualify a DynamoDB-compatible endpoint: not in this build (built without the
    /// `dynamodb` feature, which brings the AWS SDK).
    #[cfg(not(feature = "dynamodb"))]
    StoreCheck {
        /// Ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            if !error.use_stderr() {
                return ExitCode::SUCCESS; // --help, --version
            }
            // check-history reserves 2 for "unknown": its unusable arguments exit 3, like
            // an unusable file. Everywhere else invalid arguments exit 2.
            let checking = std::env::args().nth(1).as_deref() == Some("check-history");
            return ExitCode::from(if checking { check_history::UNUSABLE } else { 2 });
        }
    };
    match cli.command {
        Command::Repro(args) => repro::run(&args),
        Command::CheckHistory(args) => check_history::run(&args),
        #[cfg(feature = "dynamodb")]
        Command::StoreCheck(args) => store_check::run(&args),
        #[cfg(feature = "dynamodb")]
        Command::Fleet(args) => fleet::run(&args),
        #[cfg(feature = "dynamodb")]
        Command::FleetWorker(args) => fleet::run_worker(&args),
        #[cfg(not(feature = "dynamodb"))]
        Command::StoreCheck { .. } => {
            eprintln!(
                "error: this quota-verify was built without DynamoDB support; rebuild it with \
                 the default features (cargo build --release -p quota-verify) to run store-check"
            );
            ExitCode::from(3)
        }
    }
}
