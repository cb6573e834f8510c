//! Instructions per call, counted by `valgrind --tool=callgrind`: a figure that does not move
//! with the machine (the same binary and input execute the same instructions), unlike the
//! wall-clock tables. Each implementation runs in this binary's tight-loop mode, one thread,
//! at two call counts; the difference divided by the extra calls leaves start-up out.

use std::process::Command;

/// Call counts of the two runs (the slope between them is the cost of one call).
const CALLS: [u64; 2] = [200_000, 600_000];

/// The implementations counted, with the figure's name.
const COUNTED: [(&str, &str); 4] = [
    ("toy", "toy: parking_lot::Mutex, 3 counters"),
    ("core", "record_call, fixed core on parking_lot"),
    ("admit", "admit, fixed core on parking_lot"),
    (
        "admit-bounded",
        "admit, bounded mode (lease has room), fixed core on parking_lot",
    ),
];

/// Instructions executed by this binary in tight-loop mode for `which` and `calls`.
fn instructions(which: &str, calls: u64) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let output = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(&exe)
        .args(["--tight-loop", which, &calls.to_string()])
        .output()
        .map_err(|e| format!("cannot run valgrind ({e}): install it to count instructions"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("valgrind failed ({}): {stderr}", output.status));
    }
    // `==1234== Collected : 25341565`
    stderr
        .lines()
        .find_map(|line| line.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no instruction count in valgrind's output: {stderr}"))
}

/// Instructions per call of `which`.
fn per_call(which: &str) -> Result<f64, String> {
    let [few, many] = CALLS;
    let (a, b) = (instructions(which, few)?, instructions(which, many)?);
    Ok(b.saturating_sub(a) as f64 / (many - few) as f64)
}

/// Prints the table and keeps the counts (2 % margin: they repeat exactly run to run).
/// Without valgrind it says so on stderr and keeps nothing, so a baseline comparison reports
/// the counts as no longer measured rather than passing without them.
pub fn report() {
    if cfg!(debug_assertions) {
        // A debug build's counts say nothing about the hot path, and under callgrind they
        // take a minute: the figure is the release build's.
        println!("\n## Instructions per call: not counted in a debug build (run with --release)");
        eprintln!("warning: instruction counts are only taken in a release build");
        return;
    }
    println!(
        "\n## Instructions per call (valgrind --tool=callgrind, 1 thread, tight loop; the slope between {} and {} calls)\n",
        CALLS[0], CALLS[1]
    );
    println!("| implementation | instructions per call | ratio to record_call |");
    println!("|---|---|---|");
    let mut counts = Vec::new();
    for (which, name) in COUNTED {
        match per_call(which) {
            Ok(n) => counts.push((which, name, n)),
            Err(e) => {
                eprintln!("warning: instruction counts not measured: {e}");
                println!("| (not measured: {e}) | | |");
                return;
            }
        }
    }
    let core = counts
        .iter()
        .find(|(w, _, _)| *w == "core")
        .map_or(f64::NAN, |c| c.2);
    for (_, name, n) in &counts {
        println!("| {name} | {n:.1} | {:.2}× |", n / core);
        crate::figures::keep(
            &format!("instructions per call, {name}"),
            *n,
            "instructions",
            0.02,
        );
    }
}
