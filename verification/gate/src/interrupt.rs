//! On SIGINT or SIGTERM the gate stops what it started, then exits: its child processes get
//! SIGTERM (nextest passes it on to the tests it runs) and its emulator containers are
//! removed, so nothing of the gate's outlives it (short of SIGKILL, which no handler sees).

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Child processes running now.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Emulator containers running now.
static CONTAINERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn locked<T>(list: &Mutex<Vec<T>>) -> std::sync::MutexGuard<'_, Vec<T>> {
    list.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the handler; on a signal it stops everything tracked and exits with 128 + the
/// signal's number, as a shell reports a process a signal ended.
pub fn install() -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot handle SIGINT and SIGTERM: {e}"))?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            for pid in std::mem::take(&mut *locked(&CHILDREN)) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            for id in std::mem::take(&mut *locked(&CONTAINERS)) {
                crate::emulator::remove(&id);
            }
            eprintln!(
                "quota-gate: interrupted (signal {signal}); its processes and containers stopped"
            );
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// A child process the handler stops if the gate is interrupted; forgotten when dropped.
pub struct Tracked(Child);

impl std::ops::Deref for Tracked {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Tracked {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let pid = self.0.id();
        locked(&CHILDREN).retain(|p| *p != pid);
    }
}

/// `command.spawn()`, tracked until the result is dropped.
pub fn spawn(command: &mut Command) -> io::Result<Tracked> {
    let child = command.spawn()?;
    locked(&CHILDREN).push(child.id());
    Ok(Tracked(child))
}

/// `command.status()`, the child tracked while it runs.
pub fn status(command: &mut Command) -> io::Result<ExitStatus> {
    spawn(command)?.wait()
}

/// Tracks a container the handler removes if the gate is interrupted.
pub fn track_container(id: &str) {
    locked(&CONTAINERS).push(id.to_owned());
}

/// Stops tracking a container (it was removed).
pub fn forget_container(id: &str) {
    locked(&CONTAINERS).retain(|c| c != id);
}
