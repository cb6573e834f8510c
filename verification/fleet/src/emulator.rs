//! The fleet's own emulator: dynalite in a container keeping its tables on a volume
//! (`--path`), on a fixed host port, so the server process can be killed and started again
//! (`docker restart`) with the table intact, and paused. Removed, with its volume, on drop.
//! [`Emulator::in_memory`] is the same server without the volume, for the DynamoDB tests
//! that need a server of their own (one they pause) but not its tables across a restart.
//!
//! A process killed outright (SIGKILL, a test harness's timeout) runs no drop, so each
//! container carries its owner (pid namespace, pid and the process's start time) in a label,
//! and every emulator started removes the containers, and volumes, of owners that are gone
//! (on Linux: elsewhere there is no `/proc` to tell, and nothing is swept).

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// The image `scripts/dynamodb-setup` builds.
pub const IMAGE: &str = "quota-verify/dynalite:local";

/// A running emulator container.
pub struct Emulator {
    name: String,
    /// The volume holding the tables; `None` in memory.
    volume: Option<String>,
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

/// The label holding a container's owner (see the module doc).
const OWNER_LABEL: &str = "quota-verify.owner";

/// This pid namespace, as `/proc` names it (`pid:[4026531836]`).
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|ns| ns.display().to_string())
}

/// `<pid namespace>:<pid>:<start time>` of process `pid`, if it runs: the start time (in
/// clock ticks since boot, `/proc/<pid>/stat`'s 22nd field) tells it from a later process
/// given the same pid.
fn owner(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields count from the last `)`.
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!("{}:{pid}:{start}", pid_namespace()?))
}

/// Removes the emulator containers (and their volumes) whose owner, in this pid namespace,
/// is gone. Containers of other namespaces are left alone: their owners cannot be seen.
fn remove_orphans() {
    let Some(namespace) = pid_namespace() else {
        return;
    };
    let format = format!("{{{{.Names}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
    let filter = format!("label={OWNER_LABEL}");
    let Ok(listed) = docker(&["ps", "-a", "--filter", &filter, "--format", &format]) else {
        return;
    };
    for line in listed.lines() {
        let Some((name, labelled)) = line.split_once(' ') else {
            continue;
        };
        let mut fields = labelled.rsplitn(3, ':');
        let (Some(_start), Some(pid), Some(theirs)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let alive = pid.parse().ok().and_then(owner).as_deref() == Some(labelled);
        if theirs != namespace || alive {
            continue;
        }
        if docker(&["rm", "-f", name]).is_ok() {
            let _ = docker(&["volume", "rm", "-f", name]);
            eprintln!(
                "removed the emulator container {name}: process {pid}, which started it, is gone"
            );
        }
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
        Self::launch(true)
    }

    /// Starts the emulator with its tables in memory (no volume): gone with the container.
    /// Each call starts another container.
    pub fn in_memory() -> Result<Self, String> {
        Self::launch(false)
    }

    fn launch(on_volume: bool) -> Result<Self, String> {
        docker(&["image", "inspect", IMAGE]).map_err(|_| {
            format!("the emulator image {IMAGE} is missing (or no container engine answers): run scripts/dynamodb-setup")
        })?;
        remove_orphans();
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("quota-fleet-{}-{n}", std::process::id());
        let port = free_port()?;
        let emulator = Self {
            name: tag.clone(),
            volume: on_volume.then_some(tag),
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        let published = format!("127.0.0.1:{port}:8000");
        // Without /proc (not Linux) there is no owner to record: no label, and no sweep.
        let labelled = owner(std::process::id()).map(|owner| format!("{OWNER_LABEL}={owner}"));
        let mut args = vec!["run", "-d", "--name", &emulator.name, "-p", &published];
        if let Some(labelled) = &labelled {
            args.extend(["--label", labelled]);
        }
        let mount = emulator.volume.as_ref().map(|v| format!("{v}:/data"));
        if let Some(mount) = &mount {
            args.extend(["-v", mount]);
        }
        args.push(IMAGE);
        if mount.is_some() {
            args.extend(["--path", "/data"]);
        }
        // From here on, an early return drops `emulator`, which removes the container.
        docker(&args)?;
        emulator.wait_ready(1)?;
        Ok(emulator)
    }

    /// The container's name, for `docker` commands.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kills the server process and starts it again on the same volume and port; returns
    /// once it answers.
    pub fn restart(&self) -> Result<(), String> {
        let before = self.starts();
        docker(&["restart", "--time", "0", &self.name])?;
        self.wait_ready(before + 1)
    }

    /// Freezes the server (every request waits). Tried up to 5 times: on a loaded machine
    /// the engine's freezer sometimes fails ("OCI runtime pause failed: unable to freeze",
    /// seen once in a gate run), and a moment later it freezes.
    pub fn pause(&self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..5 {
            match docker(&["pause", &self.name]) {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("{last} (5 attempts)"))
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
        if let Some(volume) = &self.volume {
            let _ = docker(&["volume", "rm", "-f", volume]);
        }
    }
}
