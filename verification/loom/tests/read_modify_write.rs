//! Invariant 1: concurrent `record_call`s lose nothing, for every interleaving.
#![cfg(loom)]

use quota_loom::fixture::rmw_model;
use quota_loom::{Bound, Model, prove};
use quota_tracker::zoo::Variant::Fixed;

#[test]
fn two_threads_on_different_services() {
    prove(
        Model::proof("rmw/2-threads-different-services", Bound::Exhaustive),
        rmw_model(Fixed, &[("tiingo", 1), ("finnhub", 1)]),
    );
}

#[test]
fn two_threads_on_the_same_service() {
    prove(
        Model::proof("rmw/2-threads-same-service", Bound::Exhaustive),
        rmw_model(Fixed, &[("tiingo", 1), ("tiingo", 1)]),
    );
}

#[test]
fn two_threads_two_calls_each() {
    prove(
        Model::proof("rmw/2-threads-x-2-calls", Bound::Exhaustive),
        rmw_model(Fixed, &[("tiingo", 2), ("finnhub", 2)]),
    );
}

#[test]
fn three_threads_on_same_and_different_services() {
    prove(
        Model::proof("rmw/3-threads-mixed", Bound::Exhaustive),
        rmw_model(Fixed, &[("tiingo", 1), ("finnhub", 1), ("tiingo", 1)]),
    );
}
