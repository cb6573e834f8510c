//! The fleet's own emulator: dynalite in a container keeping its tables on a volume
//! (`--path`), on a fixed host port, so the server process can be killed and started again
//! (`docker restart`) with the table intact, and paused. Removed, with its volume, on drop.

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// The image `scripts/dynamodb-setup` builds.
pub const IMAGE: &str = "quota-verify/dynalite:local";

/// A running emulator container.
pub struct Emulator {
    name: String,
    volume: String,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    port: u16,
}

fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker").args(args).output().map_err(|e| {
        format!("cannot run docker ({e}): install a container engine (scripts/dynamodb-setup)")
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A free port on 127.0.0.1 (another process may take it before the container does; the
/// start then fails and says so).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

impl Emulator {
    /// Starts the emulator on a volume of its own, named after this process.
    pub fn start() -> Result<Self, String> {
        docker(&["image", "inspect", IMAGE]).map_err(|_| {
            format!("the emulator image {IMAGE} is missing (or no container engine answers): run scripts/dynamodb-setup")
        })?;
        let tag = format!("quota-fleet-{}", std::process::id());
        let port = free_port()?;
        let emulator = Self {
            name: tag.clone(),
            volume: tag,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        docker(&[
            "run",
            "-d",
            "--name",
            &emulator.name,
            "-p",
            &format!("127.0.0.1:{port}:8000"),
            "-v",
            &format!("{}:/data", emulator.volume),
            IMAGE,
            "--path",
            "/data",
        ])?;
        emulator.wait_ready(1)?;
        Ok(emulator)
    }

    /// Kills the server process and starts it again on the same volume and port; returns
    /// once it answers.
    pub fn restart(&self) -> Result<(), String> {
        let before = self.starts();
        docker(&["restart", "--time", "0", &self.name])?;
        self.wait_ready(before + 1)
    }

    /// Freezes the server (every request waits).
    pub fn pause(&self) -> Result<(), String> {
        docker(&["pause", &self.name]).map(|_| ())
    }

    /// Thaws it.
    pub fn unpause(&self) -> Result<(), String> {
        docker(&["unpause", &self.name]).map(|_| ())
    }

    /// How many times the server said it listens (once per start of its process).
    fn starts(&self) -> usize {
        Command::new("docker")
            .args(["logs", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .matches("Listening at")
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits until the server process has started `starts` times and its port answers.
    fn wait_ready(&self, starts: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.starts() >= starts && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the emulator {} did not answer within 30 s",
            self.name
        ))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
        let _ = docker(&["volume", "rm", "-f", &self.volume]);
    }
}
