//! The instruction baseline must fail on a change that adds work to the hot path: the bench
//! tier copies the workspace (only what changed since the last run, so its build is
//! incremental), makes a throwaway change in the copy (the clock's value passed
//! through two `black_box`es on `record_call`'s hot path), builds the copy's `quota-bench`,
//! counts its instructions and compares that count with this run's exactly as the baseline
//! comparison would. The check passes only when the comparison fails.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::baseline::figure_regression;
use crate::bench::quota_bench;
use crate::nextest::tail;
use crate::report::{Check, Figure, Status};

/// The figure the throwaway change must move past its margin.
const FIGURE: &str = "instructions per call, record_call, fixed core on parking_lot";
/// Where in the copy the change goes: a marker comment on the hot path.
const FILE: &str = "crates/quota-tracker/src/fast.rs";
const MARKER: &str = "// The gate's throwaway change goes here (verification/gate/src/probe.rs).";
/// The change: two more stores and loads per call.
const CHANGE: &str = "let now = std::hint::black_box(std::hint::black_box(now));";
/// What the copy holds: everything a build of the workspace reads.
const COPIED: [&str; 5] = [
    "Cargo.toml",
    "Cargo.lock",
    "crates",
    "verification",
    "scripts",
];

/// Runs the probe against `figures` (this run's bench figures); logs to `log`.
pub fn run(figures: &[Figure], log: &Path) -> Check {
    let started = Instant::now();
    eprintln!("  bench: a throwaway change on the hot path must fail the instruction baseline");
    let (status, detail) = match probe(figures, log) {
        Ok(detail) => (Status::Pass, detail),
        Err(detail) => (Status::Fail, detail),
    };
    Check {
        name: "bench/instruction-baseline-fails-on-a-hot-path-change".to_owned(),
        tier: "bench".to_owned(),
        status,
        elapsed_ms: started.elapsed().as_millis() as u64,
        detail,
    }
}

fn probe(figures: &[Figure], log: &Path) -> Result<String, String> {
    let Some(unchanged) = figures.iter().find(|f| f.name == FIGURE) else {
        return Err(format!(
            "this run has no figure {FIGURE:?} (valgrind missing, or a debug build?): nothing to compare the change with"
        ));
    };
    let source = std::fs::read_to_string(FILE).map_err(|e| format!("cannot read {FILE}: {e}"))?;
    if source.matches(MARKER).count() != 1 {
        return Err(format!(
            "{FILE} must hold the marker {MARKER:?} exactly once"
        ));
    }
    let changed = source.replace(MARKER, &format!("{MARKER}\n{CHANGE}"));
    let root = PathBuf::from("target/probe");
    let copy = root.join("workspace");
    let content = |path: &Path| {
        if path == Path::new(FILE) {
            Ok(changed.clone().into_bytes())
        } else {
            std::fs::read(path)
        }
    };
    for entry in COPIED {
        sync_tree(Path::new(entry), &copy.join(entry), &content)
            .map_err(|e| format!("cannot copy {entry} to {}: {e}", copy.display()))?;
    }
    let json = std::path::absolute(root.join("figures.json"))
        .map_err(|e| format!("cannot resolve target/probe: {e}"))?;
    let _ = std::fs::remove_file(&json);
    let target = std::path::absolute(root.join("target"))
        .map_err(|e| format!("cannot resolve target/probe: {e}"))?;
    let built = quota_bench("--instructions", &json, log).and_then(|mut command| {
        crate::interrupt::status(command.current_dir(&copy).env("CARGO_TARGET_DIR", &target))
    });
    let measured = std::fs::read_to_string(&json)
        .ok()
        .and_then(|text| serde_json::from_str::<Vec<Figure>>(&text).ok());
    let changed = match (built, measured) {
        (Ok(status), Some(figures)) if status.success() => figures,
        (status, _) => {
            return Err(format!(
                "the changed copy's quota-bench did not count ({status:?}); the end of {}:\n{}",
                log.display(),
                tail(log, 30)
            ));
        }
    };
    let after = changed.iter().find(|f| f.name == FIGURE);
    let after_value = after.map_or(f64::NAN, |f| f.value);
    match figure_regression(unchanged, after) {
        Some(regression) => Ok(format!(
            "the throwaway change took {FIGURE} from {:.1} to {after_value:.1}; the comparison fails as it should: {regression}",
            unchanged.value
        )),
        None => Err(format!(
            "a change adding work to the hot path took {FIGURE} from {:.1} to {after_value:.1}, and the baseline comparison let it pass",
            unchanged.value
        )),
    }
}

/// Copies `from` (a file or a directory) to `to`, leaving out build output.
/// Makes `to` hold what `from` holds (`target` directories left out), each file's bytes as
/// `content` gives them. Only files whose bytes differ are written and files gone from `from`
/// are removed, so that cargo sees what did not change as unchanged and the copy's build
/// stays incremental from one gate run to the next.
fn sync_tree(
    from: &Path,
    to: &Path,
    content: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<()> {
    if from.is_file() {
        let bytes = content(from)?;
        if std::fs::read(to).ok().as_deref() == Some(&bytes[..]) {
            return Ok(());
        }
        if to.is_dir() {
            std::fs::remove_dir_all(to)?;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        return std::fs::write(to, bytes);
    }
    if to.is_file() {
        std::fs::remove_file(to)?;
    }
    std::fs::create_dir_all(to)?;
    let mut kept = std::collections::HashSet::new();
    for entry in std::fs::read_dir(from)? {
        let name = entry?.file_name();
        if name == "target" {
            continue;
        }
        sync_tree(&from.join(&name), &to.join(&name), content)?;
        kept.insert(name);
    }
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        if !kept.contains(&entry.file_name()) {
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}
