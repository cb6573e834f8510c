//! The Python history recorder (`verification/python/quota_history.py`) and its tests, run
//! against this build's `quota-verify check-history`.
//!
//! Runs `python3 -m unittest -v test_quota_history` in `verification/python` with
//! `QUOTA_VERIFY` set to the binary under test. A machine without `python3` fails this test
//! (loudly): it is part of the suite, not optional.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn python_recorder_histories_are_judged_by_check_history() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../verification/python");
    assert!(
        dir.join("test_quota_history.py").is_file(),
        "no test_quota_history.py in {}",
        dir.display()
    );
    let output = Command::new("python3")
        .args(["-m", "unittest", "-v", "test_quota_history"])
        .current_dir(&dir)
        .env("QUOTA_VERIFY", env!("CARGO_BIN_EXE_quota-verify"))
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "\n\n*** FAILED: cannot start `python3` ({e}). ***\n\
                 The Python recorder's tests need python3 (3.9 or later) on PATH; install it \
                 rather than skipping this test.\n\n"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python3 -m unittest -v test_quota_history in {} failed ({}):\n{stderr}{stdout}",
        dir.display(),
        output.status
    );
    assert!(
        stderr.contains("\nOK"),
        "unittest exited 0 without reporting OK:\n{stderr}{stdout}"
    );
    // unittest reports on stderr; the figures (operations, verdicts, lost updates) are there.
    eprintln!("{stderr}{stdout}");
}
