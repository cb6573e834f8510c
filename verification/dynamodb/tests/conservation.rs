//! Several tracker instances × threads against one real DynamoDB-compatible server: the
//! table's counters equal the calls recorded, per service, exactly.

use std::sync::Arc;

use quota_dynamodb_tests::{Server, flush, record_concurrently};
use quota_tracker::{Store, TickingClock};

#[test]
fn four_instances_times_four_threads_lose_and_double_nothing() {
    let server = Server::start();
    let clock = TickingClock::start();
    let store = Arc::new(server.store("conservation", clock.clone()));
    let (instances, expected) = record_concurrently(&store, &clock, "instance", 4, 4, 250, 3);
    flush(&instances);
    let day = instances[0].tracker().state().day();
    let stored = store
        .load_day(day)
        .expect("readable")
        .expect("the item exists");
    for (i, name) in ["tiingo", "finnhub", "sendgrid"].iter().enumerate() {
        assert_eq!(
            stored.used(name),
            expected[i],
            "{name}: table vs calls recorded"
        );
    }
    let total: u64 = expected.iter().sum();
    eprintln!("table holds exactly {total} calls from 4 instances x 4 threads");
}
