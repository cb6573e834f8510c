//! The DynamoDB store's integration tests against a real DynamoDB-compatible server, one
//! test binary: each suite is a module, so the AWS SDK is linked once (nine binaries linked
//! it nine times, about 40 core-seconds of a fresh-clone gate on 2 cores).

mod async_driver;
mod conservation;
mod day_boundary;
mod faults;
mod fleet_admission;
mod outage;
mod store;
mod windows;
mod zoo;
