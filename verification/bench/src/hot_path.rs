//! `record_call` throughput and latency against the floor, at 1, 2, 8 and 100 threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use quota_bench::recorders::{Admitter, Atomics, Core, Floor, PerServiceLocks, Recorder, Toy};
use quota_tracker::sync::{ParkingLotBackend, StdBackend};
use quota_tracker::{Clock, SystemClock, TickingClock};

use crate::stats::{human, percentiles};

/// One measured configuration.
pub struct Row {
    /// What was measured.
    pub name: &'static str,
    /// Threads.
    pub threads: usize,
    /// Wall time per call over all threads, nanoseconds (median round).
    pub ns_per_op: f64,
    /// Median over rounds of this row's ns/op ÷ the floor's in the same round.
    pub ratio_to_floor: f64,
    /// Per-call latency percentiles (ns, timer included).
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
}

fn run<R: Recorder>(recorder: Arc<R>, threads: usize, calls: u64, sample_every: u64) -> Measured {
    let ready = Arc::new(AtomicUsize::new(0));
    let started_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (recorder, ready, started_at) = (
                Arc::clone(&recorder),
                Arc::clone(&ready),
                Arc::clone(&started_at),
            );
            std::thread::spawn(move || {
                ready.fetch_add(1, Ordering::SeqCst);
                while ready.load(Ordering::SeqCst) < threads {
                    std::thread::yield_now();
                }
                started_at.get_or_init(Instant::now);
                let service = t % 3;
                let mut samples = Vec::with_capacity((calls / sample_every) as usize + 1);
                for i in 0..calls {
                    if i % sample_every == 0 {
                        let t0 = Instant::now();
                        recorder.record(service);
                        samples.push(t0.elapsed().as_nanos() as u64);
                    } else {
                        recorder.record(service);
                    }
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for handle in handles {
        samples.extend(
            handle
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        );
    }
    let ended = Instant::now();
    let began = started_at.get().copied().unwrap_or(ended);
    let total = calls * threads as u64;
    ((ended - began).as_nanos() as f64 / total as f64, samples)
}

/// Wall time per call (ns) and the sampled latencies of one run.
type Measured = (f64, Vec<u64>);

/// One implementation under test: a name and a run of it on fresh state.
struct Subject {
    name: &'static str,
    /// Runs `calls` per thread on `threads` threads, sampling every `n`th call.
    run: Box<dyn Fn(usize, u64, u64) -> Measured>,
}

impl Subject {
    fn new<R: Recorder>(name: &'static str, make: impl Fn() -> R + 'static) -> Self {
        Self {
            name,
            run: Box::new(move |threads, calls, sample_every| {
                run(Arc::new(make()), threads, calls, sample_every)
            }),
        }
    }
}

/// Every implementation of the table, in row order; the floor first.
fn subjects(ticking: &Arc<dyn Clock>, system: &Arc<dyn Clock>) -> Vec<Subject> {
    let (ticking, ticking_std, ticking_admit, ticking_bounded, system) = (
        Arc::clone(ticking),
        Arc::clone(ticking),
        Arc::clone(ticking),
        Arc::clone(ticking),
        Arc::clone(system),
    );
    vec![
        Subject::new("floor: AtomicU64::fetch_add", Floor::default),
        Subject::new("toy: parking_lot::Mutex, 3 counters", Toy::default),
        Subject::new("fixed core, parking_lot", move || {
            Core::<ParkingLotBackend>::new(Arc::clone(&ticking))
        }),
        Subject::new("fixed core, parking_lot, admit", move || {
            Admitter::<ParkingLotBackend>::new(Arc::clone(&ticking_admit))
        }),
        Subject::new("fixed core, parking_lot, admit, bounded mode", move || {
            Admitter::<ParkingLotBackend>::bounded(Arc::clone(&ticking_bounded))
        }),
        Subject::new("fixed core, std::sync::Mutex", move || {
            Core::<StdBackend>::new(Arc::clone(&ticking_std))
        }),
        Subject::new("fixed core, parking_lot, SystemClock", move || {
            Core::<ParkingLotBackend>::new(Arc::clone(&system))
        }),
        Subject::new("per-service locks", PerServiceLocks::default),
        Subject::new("lock-free atomics (no snapshot)", Atomics::default),
    ]
}

/// Rounds per thread count: each round runs every implementation once, in row order.
const ROUNDS: usize = 5;

/// Measures every subject at `threads` in interleaved rounds: each row's ns/op is the median
/// of its rounds, its ratio the median of its per-round ratios to the floor of the same round.
/// Interleaving spreads the VM's slow spells over all rows instead of the one that happened to
/// be running (with three runs of one row after another, the floor alone moved 7–18 ns), and
/// the median rather than the fastest round because on two shared cores the fastest
/// contended round is often one where the threads barely overlapped (a 2-thread floor of
/// 6.3 ns: no contention at all).
fn measure_all(subjects: &[Subject], threads: usize, calls: u64) -> Vec<Row> {
    for subject in subjects {
        let _ = (subject.run)(threads, calls / 10, u64::MAX);
    }
    // Per subject: ns/op of each round, and every round's samples.
    let mut rounds: Vec<(Vec<f64>, Vec<u64>)> =
        subjects.iter().map(|_| Default::default()).collect();
    for _ in 0..ROUNDS {
        for (subject, (ns, samples)) in subjects.iter().zip(&mut rounds) {
            let (round_ns, round_samples) = (subject.run)(threads, calls, 64);
            ns.push(round_ns);
            samples.extend(round_samples);
        }
    }
    let floor = rounds[0].0.clone();
    rounds
        .into_iter()
        .zip(subjects)
        .map(|((ns, mut samples), subject)| {
            let ratios: Vec<f64> = ns.iter().zip(&floor).map(|(n, f)| n / f).collect();
            let (p50, p99) = percentiles(&mut samples);
            Row {
                name: subject.name,
                threads,
                ns_per_op: median(ns),
                ratio_to_floor: median(ratios),
                p50,
                p99,
            }
        })
        .collect()
}

/// The median of `values` (0 when empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Measures every implementation at every thread count and prints the table: `calls_per_thread_1`
/// calls per thread at 1 thread, divided among the threads above it, never under `at_least`.
pub fn report(calls_per_thread_1: u64, at_least: u64) {
    let ticking: Arc<dyn Clock> = TickingClock::start();
    let system: Arc<dyn Clock> = Arc::new(SystemClock);
    let subjects = subjects(&ticking, &system);
    println!(
        "\n## record_call: throughput and latency (2 cores; {ROUNDS} interleaved rounds; ns/op: median round; ratio: median of each round's ns/op ÷ the floor's in that round)\n"
    );
    println!("| implementation | threads | ns/op | ratio to floor | p50 | p99 |");
    let mut admit_ratios = Vec::new();
    println!("|---|---|---|---|---|---|");
    for threads in [1usize, 2, 8, 100] {
        // Keep total work similar across thread counts.
        let calls = (calls_per_thread_1 / threads as u64).max(at_least);
        let rows = measure_all(&subjects, threads, calls);
        // Noisy on a shared machine: a regression is a doubling, not a few percent.
        crate::figures::keep(
            &format!("record_call, fixed core on parking_lot, {threads} threads, ratio to floor"),
            rows[2].ratio_to_floor,
            "x floor",
            1.0,
        );
        // Same rounds, same floor: admission's cost over record_call's, in both modes.
        let admit_ratio = rows[3].ratio_to_floor / rows[2].ratio_to_floor;
        let bounded_ratio = rows[4].ratio_to_floor / rows[2].ratio_to_floor;
        admit_ratios.push((threads, admit_ratio, bounded_ratio));
        crate::figures::keep(
            &format!("admit ÷ record_call, fixed core on parking_lot, {threads} threads"),
            admit_ratio,
            "x record_call",
            1.0,
        );
        crate::figures::keep(
            &format!("admit in the bounded mode ÷ record_call, {threads} threads"),
            bounded_ratio,
            "x record_call",
            1.0,
        );
        for row in &rows {
            println!(
                "| {} | {} | {:.1} | {:.2}× | {} | {} |",
                row.name,
                row.threads,
                row.ns_per_op,
                row.ratio_to_floor,
                human(row.p50),
                human(row.p99)
            );
        }
    }
    let ratios: Vec<String> = admit_ratios
        .iter()
        .map(|(threads, r, b)| format!("{threads} threads {r:.2}× (bounded {b:.2}×)"))
        .collect();
    println!(
        "\nadmit ÷ record_call (ratios to the same rounds' floor; bounded: leases with room): {}",
        ratios.join(", ")
    );
    println!(
        "\np50/p99 include the cost of reading the timer around each sampled call (see the timer row)."
    );
    let mut timer: Vec<u64> = (0..100_000)
        .map(|_| {
            let t0 = Instant::now();
            t0.elapsed().as_nanos() as u64
        })
        .collect();
    let (p50, p99) = percentiles(&mut timer);
    println!(
        "timer alone (Instant::now() twice): p50 {}, p99 {}",
        human(p50),
        human(p99)
    );
}
