//! Running a model: a proof must hold in every execution; a historical variant must be
//! caught, for the reason expected.

use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::report::{Kind, ModelReport};
use crate::trace;

/// How much of the interleaving space loom explores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Every interleaving.
    Exhaustive,
    /// Interleavings with at most this many preemptions (context switches away from a
    /// thread that could have continued). Bugs that need more are not explored.
    Preemptions(usize),
}

impl Bound {
    fn as_option(self) -> Option<usize> {
        match self {
            Bound::Exhaustive => None,
            Bound::Preemptions(n) => Some(n),
        }
    }
}

/// Why a model fails: each is a marker the failing check's message contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A counter ended below the calls recorded on it.
    LostUpdate,
    /// Store + unsynced fell below the calls recorded.
    ConservationLost,
    /// Store + unsynced exceeded the calls recorded.
    ConservationDoubled,
    /// Every thread blocked (loom's own report).
    Deadlock,
    /// A store call while the caller held the cache lock.
    IoUnderLock,
    /// Two writes of one instance in flight at once.
    TwoSyncsInFlight,
    /// A reader saw `used` and `remaining` from different updates.
    TornRead,
    /// A reader saw services and total from different updates.
    TornSnapshot,
    /// Admission let `used` pass the ceiling.
    OverCeiling,
    /// Lease calls stayed granted after every instance stopped.
    LeaseNotReturned,
}

impl Reason {
    /// The text the failing check's panic message contains.
    pub fn marker(self) -> &'static str {
        match self {
            Reason::LostUpdate => "lost update",
            Reason::ConservationLost => "conservation violated (lost)",
            Reason::ConservationDoubled => "conservation violated (doubled)",
            Reason::Deadlock => "deadlock",
            Reason::IoUnderLock => "no I/O under the cache lock",
            Reason::TwoSyncsInFlight => "at most one sync in flight",
            Reason::TornRead => "torn read",
            Reason::TornSnapshot => "torn snapshot",
            Reason::OverCeiling => "admitted past the ceiling",
            Reason::LeaseNotReturned => "lease not returned",
        }
    }
}

/// What a model is about: its name in reports, its kind, its subject.
#[derive(Debug, Clone)]
pub struct Model {
    /// `group/name`.
    pub name: String,
    /// Proof, zoo or alternative.
    pub kind: Kind,
    /// The variant or alternative, if any.
    pub subject: Option<String>,
    /// How far loom explores.
    pub bound: Bound,
}

impl Model {
    /// A model of the fixed core that must hold everywhere.
    pub fn proof(name: &str, bound: Bound) -> Self {
        Self {
            name: name.to_owned(),
            kind: Kind::Proof,
            subject: None,
            bound,
        }
    }

    /// A model of `subject` (a variant or alternative) of the given kind.
    pub fn of(kind: Kind, name: &str, subject: &str, bound: Bound) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            subject: Some(subject.to_owned()),
            bound,
        }
    }
}

impl Model {
    fn report(
        self,
        run: &Run,
        verdict: &'static str,
        reason: Option<String>,
        counterexample: Option<String>,
    ) -> ModelReport {
        ModelReport {
            name: self.name,
            kind: self.kind,
            subject: self.subject,
            executions: run.executions,
            behaviours: run.behaviours,
            preemption_bound: self.bound.as_option(),
            elapsed_ms: run.elapsed_ms,
            verdict,
            reason,
            counterexample,
        }
    }
}

std::thread_local! {
    /// Set while a test expects loom to find a failure, to keep its panic output quiet.
    static EXPECTING_FAILURE: Cell<bool> = const { Cell::new(false) };
}

fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !EXPECTING_FAILURE.with(Cell::get) {
                default(info);
            }
        }));
    });
}

struct Run {
    executions: u64,
    /// Distinct behaviours among the passing executions (`trace::behaviour_hash`), however
    /// many schedules led to each.
    behaviours: u64,
    elapsed_ms: u64,
    failure: Option<(String, Vec<String>)>,
}

/// `QUOTA_LOOM_MAX_PREEMPTIONS=N` runs every model with bound N instead of its own, and
/// `=none` every model exhaustively (for experiments: how shallow is each bug, how much does
/// a bound cost). Reports say which bound ran.
fn effective(bound: Bound) -> Bound {
    match std::env::var("QUOTA_LOOM_MAX_PREEMPTIONS") {
        Ok(value) if value == "none" => Bound::Exhaustive,
        Ok(value) => match value.parse() {
            Ok(n) => Bound::Preemptions(n),
            Err(_) => {
                panic!("QUOTA_LOOM_MAX_PREEMPTIONS={value:?}: expected a whole number or \"none\"")
            }
        },
        Err(_) => bound,
    }
}

fn run(bound: Bound, model: impl Fn() + Sync + Send + 'static) -> Run {
    install_quiet_hook();
    let executions = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&executions);
    let behaviours = Arc::new(Mutex::new(HashSet::new()));
    let seen = Arc::clone(&behaviours);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = bound.as_option();
    let started = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            trace::reset();
            model();
            let behaviour = trace::behaviour_hash();
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(behaviour);
        });
    }));
    let failure = outcome
        .err()
        .map(|payload| (panic_message(payload.as_ref()), trace::events()));
    let distinct = behaviours
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    Run {
        executions: executions.load(Ordering::Relaxed),
        behaviours: u64::try_from(distinct).unwrap_or(u64::MAX),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        failure,
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

fn counterexample(message: &str, events: &[String]) -> String {
    let mut text = events.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str("check failed: ");
    text.push_str(message);
    text
}

/// Runs a model that must keep its invariants in every execution; panics (failing the test)
/// with the failing interleaving otherwise.
pub fn prove(mut model: Model, body: impl Fn() + Sync + Send + 'static) -> ModelReport {
    model.bound = effective(model.bound);
    let run = run(model.bound, body);
    let verdict = if run.failure.is_none() {
        "pass"
    } else {
        "fail"
    };
    let example = run
        .failure
        .as_ref()
        .map(|(message, events)| counterexample(message, events));
    let report = model.report(&run, verdict, None, example);
    report.emit();
    if let Some((message, events)) = run.failure {
        panic!(
            "{}: loom found a failing execution (execution {}):\n{}",
            report.name,
            report.executions,
            counterexample(&message, &events)
        );
    }
    report
}

/// Runs a model of a bug: loom must find a failing execution, and the failed check must be
/// the one `reason` names. Panics (failing the test) if loom finds nothing, or a failure for
/// another reason: either means the harness does not catch this bug.
pub fn expect_caught(
    mut model: Model,
    reason: Reason,
    body: impl Fn() + Sync + Send + 'static,
) -> ModelReport {
    model.bound = effective(model.bound);
    EXPECTING_FAILURE.with(|f| f.set(true));
    let run = run(model.bound, body);
    EXPECTING_FAILURE.with(|f| f.set(false));
    let name = model.name.clone();
    let Some((message, events)) = run.failure.clone() else {
        panic!(
            "{name}: loom explored {} executions and found no failure: {} is not caught",
            run.executions,
            model.subject.as_deref().unwrap_or("the bug")
        );
    };
    let example = counterexample(&message, &events);
    if !message.contains(reason.marker()) {
        panic!(
            "{name}: caught for the wrong reason: expected \"{}\", got:\n{example}",
            reason.marker()
        );
    }
    let report = model.report(
        &run,
        "caught",
        Some(reason.marker().to_owned()),
        Some(example),
    );
    report.emit();
    report
}
