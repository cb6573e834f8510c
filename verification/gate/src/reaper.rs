//! A container of the gate's is removed however the gate ends, SIGKILL included: beside each
//! container a small shell, in a process group of its own, waits for the end of a pipe that
//! only the gate holds, then removes the container. The kernel closes that pipe when the gate
//! exits for any reason, so no handler has to run (`interrupt.rs` covers the signals a
//! handler sees; this covers the one it cannot).
//!
//! The pipe is opened close-on-exec (as every pipe std makes), so no other child of the gate
//! holds it open past the gate's end.

use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

/// The shell's script: read until the pipe closes, then remove the container named by `$1`.
const SCRIPT: &str = r#"cat >/dev/null; exec docker rm -f "$1" >/dev/null 2>&1"#;

/// The shell that removes one container when the gate ends; dropping it (the container
/// already removed) lets it finish and waits for it.
pub struct Reaper {
    pipe: Option<ChildStdin>,
    shell: Child,
}

impl Reaper {
    /// Starts the shell that removes `container` once the gate is gone.
    pub fn watch(container: &str) -> Result<Self, String> {
        let mut shell = Command::new("sh")
            .args(["-c", SCRIPT, "quota-gate-reaper", container])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Not in the gate's group: a Ctrl-C or a group kill must not take it first.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the container reaper (sh): {e}"))?;
        let pipe = shell.stdin.take();
        Ok(Self { pipe, shell })
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        drop(self.pipe.take());
        let _ = self.shell.wait();
    }
}

#[cfg(test)]
mod tests {
    //! The gate's own death is simulated by a child process: this test, re-run by itself as
    //! a process that starts a reaper and waits, killed with SIGKILL. A `docker` script first
    //! on the child's `PATH` records what it was asked.

    use super::*;
    use std::io::BufRead;
    use std::time::{Duration, Instant};

    /// Set in the child: the directory of the fake `docker` and its log.
    const CHILD_VAR: &str = "QUOTA_GATE_REAPER_TEST_DIR";

    /// In the child: starts a reaper for `test-container`, says so, and waits to be killed.
    fn play_the_gate() {
        let _reaper = Reaper::watch("test-container").expect("reaper started");
        println!("reaper-ready");
        std::thread::sleep(Duration::from_secs(60));
    }

    #[test]
    fn a_gate_killed_with_sigkill_still_has_its_container_removed() {
        if std::env::var_os(CHILD_VAR).is_some() {
            return play_the_gate();
        }
        let dir = std::env::temp_dir().join(format!("quota-gate-reaper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("docker.log");
        let fake = dir.join("docker");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\n", log.display()),
        )
        .expect("fake docker written");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("fake docker executable");
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "reaper::tests::a_gate_killed_with_sigkill_still_has_its_container_removed",
                "--nocapture",
            ])
            .env(CHILD_VAR, &dir)
            .env("PATH", path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("child started");
        let stdout = child.stdout.take().expect("piped");
        let ready = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("reaper-ready"));
        assert!(ready, "the child never started its reaper");
        assert!(!log.exists(), "nothing removed while the gate lives");
        child.kill().expect("SIGKILL sent");
        child.wait().expect("child reaped");
        let deadline = Instant::now() + Duration::from_secs(10);
        let removed = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("rm -f test-container") || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            removed.contains("rm -f test-container"),
            "the container was not removed after SIGKILL (docker was asked: {removed:?})"
        );
    }
}
