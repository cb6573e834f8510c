//! One implementation in a tight loop: what `examples/tight_loop.rs` profiles and what the
//! instruction counts (`quota-bench --instructions`) run under callgrind.

use std::sync::Arc;
use std::time::Instant;

use quota_tracker::sync::ParkingLotBackend;
use quota_tracker::{SystemClock, TickingClock};

use crate::recorders::{Admitter, Core, Floor, Recorder, Toy};

/// The implementations a tight loop can run, by name.
pub const IMPLEMENTATIONS: [&str; 6] = [
    "floor",
    "toy",
    "core",
    "core-system-clock",
    "admit",
    "admit-bounded",
];

/// Runs `calls` in all on `threads` threads sharing `recorder`; wall time per call (ns).
fn time<R: Recorder>(recorder: R, threads: u64, calls: u64) -> f64 {
    let recorder = Arc::new(recorder);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let recorder = Arc::clone(&recorder);
            std::thread::spawn(move || {
                // Dereferenced once: a load of the `Arc`'s pointer in every iteration is
                // the loop's, not the recorder's, and LLVM hoisted it for some builds of
                // the same source and not for others (the toy counted 22 or 26).
                let recorder: &R = &recorder;
                for i in 0..calls / threads {
                    recorder.record((i % 3) as usize);
                }
            })
        })
        .collect();
    for handle in handles {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
    started.elapsed().as_nanos() as f64 / calls as f64
}

/// Runs the implementation called `which` (one of [`IMPLEMENTATIONS`]); wall time per call
/// (ns), or an error naming the implementations.
pub fn run(which: &str, threads: u64, calls: u64) -> Result<f64, String> {
    Ok(match which {
        "floor" => time(Floor::default(), threads, calls),
        "toy" => time(Toy::default(), threads, calls),
        "core" => time(
            Core::<ParkingLotBackend>::new(TickingClock::start()),
            threads,
            calls,
        ),
        // A clock without a shared atomic: asked off the hot path's first try.
        "core-system-clock" => time(
            Core::<ParkingLotBackend>::new(Arc::new(SystemClock)),
            threads,
            calls,
        ),
        "admit" => time(
            Admitter::<ParkingLotBackend>::new(TickingClock::start()),
            threads,
            calls,
        ),
        "admit-bounded" => time(
            Admitter::<ParkingLotBackend>::bounded(TickingClock::start()),
            threads,
            calls,
        ),
        _ => {
            return Err(format!(
                "unknown implementation {which:?}: expected one of {}",
                IMPLEMENTATIONS.join(", ")
            ));
        }
    })
}
