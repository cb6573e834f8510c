//! Helpers shared by the integration tests.

use std::sync::{Arc, Mutex};

/// Keeps the message of every warning logged while it is the default subscriber.
#[derive(Default)]
struct Warnings(Mutex<Vec<String>>);

/// Reads an event's `message` field.
struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut message = String::new();
            event.record(&mut Message(&mut message));
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(message);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The messages of the warnings `f` logs (on this thread).
pub fn warned(f: impl FnOnce()) -> Vec<String> {
    let warnings = Arc::new(Warnings::default());
    tracing::subscriber::with_default(warnings.clone(), f);
    let messages = warnings.0.lock().unwrap_or_else(|e| e.into_inner());
    messages.clone()
}

/// How many warnings `f` logs (on this thread).
pub fn warnings(f: impl FnOnce()) -> usize {
    warned(f).len()
}
