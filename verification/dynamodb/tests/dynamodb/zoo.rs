//! The original service's store-level bugs, each re-introduced as a `StoreVariant` and run
//! against the real server by the same workloads that pass on the fixed store
//! (`conservation.rs`, `faults.rs`): each must be caught, and by the check aimed at it.
//!
//! - `dynamodb/conservation`: 4 instances × 2 threads recording and syncing concurrently,
//!   then the table's counters against the calls recorded.
//! - `dynamodb/after-apply-faults`: the same with every third applied write answered by an
//!   error (the write landed), so retries happen.
//!
//! Every finding is emitted for the gate (`quota_evidence`).

use std::sync::Arc;

use quota_dynamodb::zoo::StoreVariant;
use quota_dynamodb_tests::faults::AfterApplyFaults;
use quota_dynamodb_tests::{Conservation, Server, flush, record_concurrently};
use quota_evidence::Finding;
use quota_tracker::TickingClock;

/// The checks, each with the workload it runs.
const CHECKS: [&str; 2] = ["dynamodb/conservation", "dynamodb/after-apply-faults"];

fn run(server: &Server, check: &str, variant: StoreVariant) -> Conservation {
    let clock = TickingClock::start();
    let table = format!("zoo-{}-{}", variant.id(), check.replace('/', "-"));
    let store = if check == CHECKS[1] {
        let (faults, _) = AfterApplyFaults::every(3);
        server.store_with(&table, clock.clone(), |b| b.interceptor(faults))
    } else {
        server.store(&table, clock.clone())
    };
    let store = Arc::new(store.with_variant(variant));
    let (instances, expected) = record_concurrently(&store, &clock, "zoo", 4, 2, 150, 3);
    flush(&instances);
    let day = instances[0].tracker().state().day();
    Conservation::read(&store, day, &expected)
}

/// Runs every check on `variant`, emits the findings, and returns the checks that caught it.
fn caught_by(server: &Server, variant: StoreVariant) -> Vec<&'static str> {
    CHECKS
        .iter()
        .copied()
        .filter(|check| {
            let outcome = run(server, check, variant);
            let caught = !outcome.exact();
            let counterexample = if caught {
                format!("table after flushing: {outcome}")
            } else {
                String::new()
            };
            let direction = quota_evidence::direction(outcome.lost(), outcome.doubled());
            let finding = Finding::new(*check, variant.id(), caught, counterexample)
                .with_direction(direction);
            finding.emit();
            // Caught for the variant's own reason: the counts wrong its way.
            caught && variant.shows_as().is_none_or(|way| finding.shows(way))
        })
        .collect()
}

#[test]
fn sync_overwrite_is_caught_by_conservation() {
    let server = Server::start();
    let caught = caught_by(&server, StoreVariant::SyncOverwrite);
    assert!(caught.contains(&CHECKS[0]), "caught only by {caught:?}");
}

#[test]
fn overwrite_erases_counters_is_caught_by_conservation() {
    let server = Server::start();
    let caught = caught_by(&server, StoreVariant::OverwriteErasesCounters);
    assert!(caught.contains(&CHECKS[0]), "caught only by {caught:?}");
}

#[test]
fn retry_double_apply_is_caught_by_after_apply_faults() {
    let server = Server::start();
    let caught = caught_by(&server, StoreVariant::RetryDoubleApply);
    assert_eq!(caught, [CHECKS[1]], "only retries can double");
}

#[test]
fn the_fixed_store_passes_both_checks() {
    let server = Server::start();
    assert_eq!(caught_by(&server, StoreVariant::Fixed), Vec::<&str>::new());
}
