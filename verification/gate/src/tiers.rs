//! The tiers the gate runs, in order, and how each is invoked.

/// How a tier runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `cargo nextest` over the workspace's tests that match a filterset.
    Workspace {
        /// The nextest filterset.
        filter: &'static str,
    },
    /// `cargo nextest` on the loom crate, built with `--cfg loom` in release mode in its own
    /// target dir, one model at a time.
    Loom,
    /// `quota-bench --quick`, figures kept for the baseline.
    Bench,
}

/// A tier: a name users pass to `--skip`, what it covers, how it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// The name in reports and on the command line.
    pub name: &'static str,
    /// One line on what it checks.
    pub about: &'static str,
    /// How it runs.
    pub runner: Runner,
    /// Whether it needs the container engine and emulator image (`scripts/dynamodb-setup`).
    pub needs_emulator: bool,
    /// Whether it runs in the background beside the emulator tiers that follow it (they
    /// wait on the emulator and on processes much of the time, so the cores have room).
    /// Joined before the next tier that runs in the foreground without the emulator.
    pub beside_emulator: bool,
    /// Whether its tests share one emulator container the gate starts for the tier
    /// (`QUOTA_DYNAMODB_ENDPOINT`; see `emulator.rs`) instead of starting one each.
    pub shared_emulator: bool,
    /// nextest's `--test-threads`, when not one per core.
    pub test_threads: Option<usize>,
}

/// Every tier, in the order they run. The zoo and baseline tiers are derived from these
/// afterwards (see `zoo.rs`, `baseline.rs`).
pub const TIERS: &[Tier] = &[
    Tier {
        name: "unit",
        about: "unit and integration tests of the crates (core, checker, CLI, bench smoke)",
        runner: Runner::Workspace {
            filter: "not (package(quota-harness) | package(quota-dynamodb-tests) | (package(quota-verify) & binary(fleet)))",
        },
        needs_emulator: false,
        beside_emulator: false,
        shared_emulator: false,
        test_threads: None,
    },
    Tier {
        name: "lost-update",
        about: "the 48 % lost-update reproduction and admission past the ceiling (check-then-act): real threads, random and PCT shuttle schedules",
        runner: Runner::Workspace {
            filter: "package(quota-harness) & (binary(lost_update) | binary(admission) | binary(schedulers))",
        },
        needs_emulator: false,
        beside_emulator: false,
        shared_emulator: false,
        test_threads: None,
    },
    Tier {
        name: "linearizability",
        about: "proptest workloads' histories judged by the checker (real threads, shuttle)",
        runner: Runner::Workspace {
            filter: "package(quota-harness) & not (binary(lost_update) | binary(admission) | binary(schedulers))",
        },
        needs_emulator: false,
        beside_emulator: false,
        shared_emulator: false,
        test_threads: None,
    },
    Tier {
        name: "loom",
        about: "exhaustive (or bounded) loom models of the read-modify-write and sync protocol",
        runner: Runner::Loom,
        needs_emulator: false,
        beside_emulator: true,
        shared_emulator: false,
        // One model at a time: two at once on 2 cores is slower, not faster.
        test_threads: Some(1),
    },
    Tier {
        name: "dynamodb",
        about: "the DynamoDB store against a real emulator in a container",
        runner: Runner::Workspace {
            filter: "package(quota-dynamodb-tests)",
        },
        needs_emulator: true,
        beside_emulator: true,
        shared_emulator: true,
        // Its tests wait on the emulator's answers much of the time: 4 at once on 2 cores.
        test_threads: Some(4),
    },
    Tier {
        name: "fleet",
        about: "worker processes against the emulator on a volume: kill, freeze, SIGTERM, store restart and pause; store variants caught at fleet level",
        runner: Runner::Workspace {
            filter: "package(quota-verify) & binary(fleet)",
        },
        needs_emulator: true,
        beside_emulator: false,
        shared_emulator: false,
        // Each test waits out its fleet's duration, the workers admitting at a set rate:
        // 4 at once on 2 cores (the tier 47 s warm, against about 65 s with 2), in the
        // foreground while loom and the dynamodb tier run in the background.
        test_threads: Some(4),
    },
    Tier {
        name: "bench",
        about: "quick benchmarks; figures compared with the baseline",
        runner: Runner::Bench,
        needs_emulator: false,
        beside_emulator: false,
        shared_emulator: false,
        test_threads: None,
    },
];

/// The derived tier holding one check per historical variant.
pub const ZOO: &str = "zoo";
/// The derived tier holding the baseline comparisons.
pub const BASELINE: &str = "baseline";

/// Every tier name `--skip` accepts.
pub fn names() -> Vec<&'static str> {
    TIERS.iter().map(|t| t.name).collect()
}
