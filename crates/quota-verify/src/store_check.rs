//! `quota-verify store-check`: does a DynamoDB-compatible endpoint lose or double updates?

use std::process::ExitCode;

use quota_dynamodb::{DynamoConfig, qualify};
use serde_json::json;

/// Exit code: nothing lost or doubled.
const PASSED: u8 = 0;
/// Exit code: the endpoint lost or doubled updates.
const BROKEN: u8 = 1;
/// Exit code: the check could not run.
const CANNOT_RUN: u8 = 3;

/// Qualify a DynamoDB-compatible endpoint before trusting it in tests.
///
/// WRITERS concurrent clients each send OPS `UpdateItem ADD 1`s to one counter and OPS
/// compare-and-set increments (read, then write under a condition) to one register, on fresh
/// items of TABLE (created if missing). Then the counter must equal the acknowledged ADDs
/// (nothing lost, nothing doubled), every ADD must have returned a different value, and the
/// register must equal the successful compare-and-sets. Emulators have failed this: moto's
/// threaded server lost a few of 2,000 concurrent ADDs.
///
/// Credentials: the AWS environment if set; dummy ones otherwise (emulators accept any).
///
/// Exit status: 0 nothing lost or doubled, 1 the endpoint lost or doubled updates (with the
/// counts), 3 the check could not run (unreachable, bad credentials, no table rights).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  quota-verify store-check --endpoint http://127.0.0.1:8000 --writers 64 --ops 30 --json")]
pub struct Args {
    /// The endpoint, e.g. http://127.0.0.1:8000.
    #[arg(long)]
    endpoint: String,

    /// The table to use (created if missing; only fresh items of this run are written).
    #[arg(long, default_value = "quota-verify-store-check")]
    table: String,

    /// Concurrent writers.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    writers: u64,

    /// Operations of each kind per writer.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    ops: u64,

    /// The AWS region to sign for.
    #[arg(long, default_value = "us-east-1")]
    region: String,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the command and returns its exit code.
pub fn run(args: &Args) -> ExitCode {
    let config = DynamoConfig {
        table: args.table.clone(),
        endpoint: Some(args.endpoint.clone()),
        region: args.region.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("quota-verify store-check: cannot start a runtime: {e}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    let writers = usize::try_from(args.writers).unwrap_or(usize::MAX);
    let result = match runtime.block_on(qualify(&config, writers, args.ops)) {
        Ok(result) => result,
        Err(e) => {
            eprintln!(
                "quota-verify store-check: could not run against {}: {e}",
                args.endpoint
            );
            return ExitCode::from(CANNOT_RUN);
        }
    };
    let verdict = if result.passed() {
        "passed"
    } else {
        "lost-or-doubled"
    };
    if args.json {
        println!(
            "{}",
            json!({
                "endpoint": args.endpoint,
                "writers": result.writers,
                "ops": result.ops,
                "expected": result.expected,
                "observed": result.observed,
                "lost": result.lost,
                "doubled": result.doubled,
                "repeated_returns": result.repeated_returns,
                "cas_succeeded": result.cas_succeeded,
                "cas_observed": result.cas_observed,
                "elapsed_ms": result.elapsed.as_secs_f64() * 1000.0,
                "verdict": verdict,
            })
        );
    } else {
        println!(
            "{}: {} writers x {} ADDs: expected {}, observed {} (lost {}, doubled {}, repeated returns {}); \
             compare-and-set: {} succeeded, register {}; {:.1} s",
            args.endpoint,
            result.writers,
            result.ops,
            result.expected,
            result.observed,
            result.lost,
            result.doubled,
            result.repeated_returns,
            result.cas_succeeded,
            result.cas_observed,
            result.elapsed.as_secs_f64()
        );
        println!(
            "verdict: {}",
            if result.passed() {
                "nothing lost or doubled"
            } else {
                "this endpoint LOST OR DOUBLED updates: do not trust it as a test double"
            }
        );
    }
    ExitCode::from(if result.passed() { PASSED } else { BROKEN })
}
