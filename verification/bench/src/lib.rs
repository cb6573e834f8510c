//! The benchmarks' shared parts: the implementations under test ([`recorders`]) and the tight
//! loop that runs one of them ([`tight`]), used by the `quota-bench` tables, its instruction
//! counts and the `tight_loop` example alike.

pub mod recorders;
pub mod tight;
