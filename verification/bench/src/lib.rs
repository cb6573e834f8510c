//! The benchmarks' shared parts: the implementations under test ([`recorders`]), used by the
//! `quota-bench` tables and the `tight_loop` example alike.

pub mod recorders;
