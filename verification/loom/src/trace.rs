//! The event log of the current loom execution.
//!
//! Each model step appends "T1 reads tiingo.used=0"-style lines; the log is cleared when an
//! execution starts, so when a check fails the log holds exactly the failing interleaving.
//! It is a std thread local on purpose: instrumentation, not part of what loom explores. Loom
//! runs all threads of a model on the OS thread that called it, so each test (each OS thread)
//! has its own log even when tests run in parallel.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash as _, Hasher as _};

std::thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

loom::thread_local! {
    // The role the model's own thread plays, while `run_concurrently` runs one on it.
    static ROLE: RefCell<Option<String>> = RefCell::new(None);
}

/// The label of the running loom thread ("T1", ...; "main" for the model's own thread when
/// it plays no role).
pub fn label() -> String {
    ROLE.with(|role| role.borrow().clone()).unwrap_or_else(|| {
        loom::thread::current()
            .name()
            .map_or_else(|| "main".to_owned(), str::to_owned)
    })
}

/// Appends an event of the current thread.
pub fn event(args: fmt::Arguments<'_>) {
    let line = format!("{} {args}", label());
    LOG.with(|log| log.borrow_mut().push(line));
}

/// Appends an event of the current thread (formatting like `format!`).
#[macro_export]
macro_rules! event {
    ($($arg:tt)*) => {
        $crate::trace::event(format_args!($($arg)*))
    };
}

/// Clears the log: called as each execution starts.
pub fn reset() {
    LOG.with(|log| log.borrow_mut().clear());
    // The zoo's steps report through the same log (installed once per process).
    quota_tracker::zoo::set_tracer(event);
}

/// A hash of what each thread saw in the current execution: its own events in order, per
/// label. Two schedules that differ only in the order of independent steps hash the same
/// (the log's order between threads is the scheduler's, not the model's).
pub fn behaviour_hash() -> u64 {
    LOG.with(|log| {
        let log = log.borrow();
        let mut threads: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for line in log.iter() {
            let (label, step) = line.split_once(' ').unwrap_or((line, ""));
            threads.entry(label).or_default().push(step);
        }
        let mut hasher = std::hash::DefaultHasher::new();
        threads.hash(&mut hasher);
        hasher.finish()
    })
}

/// The events of the current (or last failed) execution.
pub fn events() -> Vec<String> {
    LOG.with(|log| log.borrow().clone())
}

/// Spawns a loom thread named `name`, so its events carry that label.
pub fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> loom::thread::JoinHandle<T> {
    loom::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap_or_else(|e| panic!("loom could not spawn {name}: {e}"))
}

/// A model thread's part: its label and what it does.
pub type Role = (String, Box<dyn FnOnce() + Send + 'static>);

/// Runs `roles` at once and returns when all are done: every role but the last on a loom
/// thread of its own, the last on the model's own thread under its label.
///
/// Why not a thread each: a loom thread costs a fresh stack mapping and an unwind in every
/// execution (perf on `sync/failing-read`: two thirds of its time in the kernel, mapping,
/// faulting and unmapping those stacks), and the model's own thread would only wait in
/// `join`, where loom explores where each wait ends: schedules that change nothing the roles
/// see. The roles' steps interleave as before (the last role starts after every spawn, as a
/// spawned thread may). Measured at the same preemption bound, thread each against this:
/// `sync/failing-write` 104,098 executions in 18.5 s against 9,002 in 1.3 s, with the same
/// 10 behaviours (`behaviour_hash`), the same set, hash for hash; likewise the other
/// bound-4 models (see ARCHITECTURE.md).
pub fn run_concurrently(mut roles: Vec<Role>) {
    let Some((label, last)) = roles.pop() else {
        return;
    };
    let handles: Vec<_> = roles
        .into_iter()
        .map(|(name, body)| (spawn(&name, body), name))
        .collect();
    ROLE.with(|role| *role.borrow_mut() = Some(label));
    last();
    ROLE.with(|role| *role.borrow_mut() = None);
    for (handle, name) in handles {
        if handle.join().is_err() {
            panic!("model thread {name} panicked");
        }
    }
}
