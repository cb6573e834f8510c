//! The event log of the current loom execution.
//!
//! Each model step appends "T1 reads tiingo.used=0"-style lines; the log is cleared when an
//! execution starts, so when a check fails the log holds exactly the failing interleaving.
//! It is a std thread local on purpose: instrumentation, not part of what loom explores. Loom
//! runs all threads of a model on the OS thread that called it, so each test (each OS thread)
//! has its own log even when tests run in parallel.

use std::cell::RefCell;
use std::fmt;

std::thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The label of the running loom thread ("T1", ...; "main" for the model's own thread).
pub fn label() -> String {
    loom::thread::current()
        .name()
        .map_or_else(|| "main".to_owned(), str::to_owned)
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
