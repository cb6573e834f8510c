//! One emulator container shared by a tier's tests, removed when the tier ends, on Ctrl-C or
//! SIGTERM (`interrupt.rs`), and when the gate dies otherwise, SIGKILL included (`reaper.rs`):
//! no container of the gate's outlives it.
//!
//! Why: a container per test (36 of them) costs the dynamodb tier CPU that 2 cores do not have
//! to spare: measured beside nothing else, 117 core-seconds and 64 s with a container per test,
//! 91 and 52 s with one shared. Shared, each test still has its own tables (the suites name
//! them apart), on a server that starts empty with every gate run. Tests that
//! do things to the server process itself (pause it) start their own container regardless
//! (`Server::container` in `verification/dynamodb`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::interrupt;
use crate::reaper::Reaper;

/// The image `scripts/dynamodb-setup` builds (`verification/dynamodb`'s `IMAGE` names it too;
/// the gate does not depend on that crate, which builds the AWS SDK).
pub const IMAGE: &str = "quota-verify/dynalite:local";

/// The environment variable through which the tests find a running server.
pub const ENDPOINT_VAR: &str = "QUOTA_DYNAMODB_ENDPOINT";

/// How long a table the shared emulator creates stays CREATING (dynalite's default: 500).
const CREATE_TABLE_MS: &str = "50";

/// How long the emulator may take to say it listens.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running emulator container; dropped, it is removed.
pub struct SharedEmulator {
    id: String,
    /// Removes the container if the gate dies before `drop` does.
    reaper: Option<Reaper>,
    /// `http://127.0.0.1:PORT`, for `QUOTA_DYNAMODB_ENDPOINT`.
    pub endpoint: String,
}

impl SharedEmulator {
    /// Starts the emulator image on a port the engine picks and waits until it listens.
    pub fn start() -> Result<Self, String> {
        let id = docker(&[
            "run",
            "-d",
            "--rm",
            "-P",
            "--label",
            "quota-verify=gate",
            IMAGE,
            // dynalite keeps a new table CREATING for 500 ms by default, and the tier's tests
            // create dozens (40 in fleet_admission alone): 50 ms still has the store wait for
            // ACTIVE on a table it just created.
            "--createTableMs",
            CREATE_TABLE_MS,
        ])?;
        interrupt::track_container(&id);
        let reaper = Reaper::watch(&id);
        // From here on, an early return drops `emulator`, which removes the container.
        let mut emulator = Self {
            id,
            reaper: None,
            endpoint: String::new(),
        };
        emulator.reaper = Some(reaper?);
        emulator.wait_until_listening()?;
        let ports = docker(&["port", &emulator.id, "8000/tcp"])?;
        let port = ports
            .lines()
            .find_map(|line| line.rsplit(':').next()?.trim().parse::<u16>().ok())
            .ok_or_else(|| format!("no host port for the emulator in `docker port`: {ports:?}"))?;
        emulator.endpoint = format!("http://127.0.0.1:{port}");
        Ok(emulator)
    }

    fn wait_until_listening(&self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let logs = Command::new("docker")
                .args(["logs", &self.id])
                .output()
                .map_err(|e| format!("cannot run docker logs: {e}"))?;
            if String::from_utf8_lossy(&logs.stdout).contains("Listening at") {
                return Ok(());
            }
            if started.elapsed() > READY_WITHIN {
                return Err(format!(
                    "the emulator container {} did not listen within {READY_WITHIN:?}; its output:\n{}{}",
                    self.id,
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SharedEmulator {
    fn drop(&mut self) {
        remove(&self.id);
        interrupt::forget_container(&self.id);
        drop(self.reaper.take());
    }
}

/// Removes a container, whatever state it is in.
pub fn remove(id: &str) {
    let _ = Command::new("docker")
        .args(["rm", "-f", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs docker with `args`; its standard output, trimmed, or an error naming the command.
fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker {}: {e}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "docker {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
