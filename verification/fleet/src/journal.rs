//! A worker's journal: what it asked, what it was answered, and what the store acknowledged,
//! one JSON object per line, each line one `write` to the file (no user-space buffer), so a
//! SIGKILL loses none of the lines already written.
//!
//! The order of writes is the ground truth's: a call's `invoke` line is written before the
//! tracker sees the call, so every call that can reach the store is in the journal; an `ack`
//! line is written after its batch landed, so every acknowledged call is in the store. After
//! a kill, an `invoke` without its answer is a call that may or may not have been recorded.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Event {
    /// The worker is up.
    Start {
        /// Its tracker's instance name.
        instance: String,
        /// Its process id.
        pid: u32,
        /// When, in ms since the Unix epoch.
        at_ms: i64,
    },
    /// A thread is about to ask for one call to `service`.
    Invoke {
        /// The thread.
        thread: usize,
        /// The thread's call number (the answer names it too).
        call: u64,
        /// The service.
        service: String,
        /// When.
        at_ms: i64,
    },
    /// The answer to an `invoke`.
    Answer {
        /// The thread.
        thread: usize,
        /// The call number.
        call: u64,
        /// Admitted (and recorded) or refused.
        admitted: bool,
        /// When.
        at_ms: i64,
    },
    /// A sync batch is about to be written (the coordinator freezes a worker on it, so
    /// the freeze lands mid-write).
    Sending {
        /// The batch's sequence number.
        seq: u64,
        /// When.
        at_ms: i64,
    },
    /// A sync batch landed: these calls per service are in the store.
    Ack {
        /// The batch's sequence number.
        seq: u64,
        /// Calls per service (refunds would be negative; the fleet workload makes none).
        calls: BTreeMap<String, i64>,
        /// How long the write took.
        took_ms: u64,
        /// When it was acknowledged.
        at_ms: i64,
    },
    /// The worker stopped after its last sync (a graceful stop).
    Stopped {
        /// When.
        at_ms: i64,
    },
}

/// Appends events to a worker's journal, one `write` per line.
pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Creates (truncates) the journal at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Mutex::new(File::create(path)?),
        })
    }

    /// Appends `event`. A journal that cannot be written is fatal to the worker: its calls
    /// could no longer be accounted for.
    pub fn write(&self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))?;
        file.write_all(&line)
    }
}

/// Reads a journal. A last line cut short (the worker was killed mid-write) is dropped;
/// any other line that does not parse is an error naming the file and line.
pub fn read(path: &Path) -> Result<Vec<Event>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read journal {}: {e}", path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(format!(
                    "journal {} line {}: {e}: {line:?}",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    Ok(events)
}

/// What one worker's journal says, per service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// Calls answered admitted.
    pub admitted: BTreeMap<String, u64>,
    /// Calls invoked and never answered (the worker died first): each may or may not have
    /// been recorded.
    pub unanswered: BTreeMap<String, u64>,
    /// Calls the store acknowledged.
    pub acked: BTreeMap<String, i64>,
    /// Whether the journal ends with a graceful stop.
    pub stopped: bool,
    /// Per service, the instants (ms) of admitted calls, sorted.
    pub times: BTreeMap<String, Vec<i64>>,
    /// The longest time between the worker's start, its acknowledged syncs and its end.
    pub longest_gap_ms: i64,
}

/// Sums a journal's events into an [`Account`].
pub fn account(events: &[Event]) -> Account {
    let mut account = Account::default();
    let mut open: BTreeMap<(usize, u64), (String, i64)> = BTreeMap::new();
    let mut last_mark: Option<i64> = None;
    let mut mark = |at: i64, account: &mut Account| {
        if let Some(before) = last_mark {
            account.longest_gap_ms = account.longest_gap_ms.max(at - before);
        }
        last_mark = Some(at);
    };
    for event in events {
        match event {
            Event::Start { at_ms, .. } => mark(*at_ms, &mut account),
            Event::Invoke {
                thread,
                call,
                service,
                at_ms,
            } => {
                open.insert((*thread, *call), (service.clone(), *at_ms));
            }
            Event::Answer {
                thread,
                call,
                admitted,
                ..
            } => {
                if let Some((service, at)) = open.remove(&(*thread, *call))
                    && *admitted
                {
                    *account.admitted.entry(service.clone()).or_default() += 1;
                    account.times.entry(service).or_default().push(at);
                }
            }
            Event::Ack { calls, at_ms, .. } => {
                for (service, n) in calls {
                    *account.acked.entry(service.clone()).or_default() += n;
                }
                mark(*at_ms, &mut account);
            }
            Event::Sending { .. } => {}
            Event::Stopped { at_ms } => {
                account.stopped = true;
                mark(*at_ms, &mut account);
            }
        }
    }
    for (service, _) in open.into_values() {
        *account.unanswered.entry(service).or_default() += 1;
    }
    for times in account.times.values_mut() {
        times.sort_unstable();
    }
    account
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoke(thread: usize, call: u64) -> Event {
        Event::Invoke {
            thread,
            call,
            service: "api".into(),
            at_ms: call as i64,
        }
    }

    fn answer(thread: usize, call: u64, admitted: bool) -> Event {
        Event::Answer {
            thread,
            call,
            admitted,
            at_ms: call as i64,
        }
    }

    #[test]
    fn answered_calls_count_and_unanswered_ones_are_kept_apart() {
        let events = vec![
            invoke(0, 1),
            answer(0, 1, true),
            invoke(1, 1),
            answer(1, 1, false),
            invoke(0, 2),
            Event::Ack {
                seq: 1,
                calls: [("api".to_owned(), 1)].into(),
                took_ms: 3,
                at_ms: 10,
            },
        ];
        let account = account(&events);
        assert_eq!(account.admitted.get("api"), Some(&1));
        assert_eq!(account.unanswered.get("api"), Some(&1));
        assert_eq!(account.acked.get("api"), Some(&1));
        assert!(!account.stopped);
    }

    #[test]
    fn a_last_line_cut_short_is_dropped_and_a_bad_line_elsewhere_is_named() {
        let dir = std::env::temp_dir().join(format!("quota-fleet-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cut = dir.join("cut.jsonl");
        std::fs::write(&cut, "{\"op\":\"stopped\",\"at_ms\":1}\n{\"op\":\"invo").expect("write");
        assert_eq!(read(&cut).map(|e| e.len()), Ok(1));
        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, "garbage\n{\"op\":\"stopped\",\"at_ms\":1}\n").expect("write");
        let error = read(&bad).expect_err("bad line");
        assert!(error.contains("line 1"), "{error}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
