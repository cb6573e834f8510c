//! The verdict, per service: the store against the workers' journals, and the fleet's
//! admissions against the ceiling (bounded mode) or the stated bound (default mode).
//!
//! Workers that stopped gracefully (survivors, the SIGTERM'd, the thawed) must be in the
//! store exactly. A killed worker's acknowledged calls must be there; its calls recorded
//! since its last acknowledged sync may be lost (that is the bound the sync policy states),
//! and its unanswered calls may or may not have landed. So, per service:
//! `graceful + Σ acked ≤ stored ≤ graceful + Σ (admitted + unanswered)`. Below: lost beyond
//! the bound. Above: doubled.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::journal::Account;

/// How a worker's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fate {
    /// Ran to the end and stopped gracefully.
    Survived,
    /// Frozen for a while, then thawed, then stopped gracefully.
    Thawed,
    /// SIGTERM'd mid-run: stopped gracefully.
    Terminated,
    /// SIGKILL'd (or died on its own: its journal has no graceful stop).
    Killed,
}

/// A worker's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    /// Its instance name.
    pub instance: String,
    /// How it ended.
    pub fate: Fate,
    /// Calls admitted, per service.
    pub admitted: BTreeMap<String, u64>,
    /// Calls invoked and never answered.
    pub unanswered: BTreeMap<String, u64>,
    /// Calls acknowledged by the store.
    pub acked: BTreeMap<String, i64>,
}

/// One service's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceVerdict {
    /// The service.
    pub service: String,
    /// Calls recorded by the fleet (admitted; a killed worker's unanswered calls not
    /// included).
    pub recorded: u64,
    /// What the store holds.
    pub stored: u64,
    /// Recorded calls the store does not hold (killed workers' unsynced calls).
    pub lost: u64,
    /// The most that may be lost: killed workers' calls since their last acknowledged sync.
    pub lost_bound: u64,
    /// Calls the store holds beyond every call that may have been recorded.
    pub doubled: u64,
    /// Calls admitted across the fleet: the asks answered "admitted". This is what the
    /// ceiling (or the stated bound) is checked against.
    pub admitted: u64,
    /// Asks of killed workers that were never answered. Each may have been admitted or
    /// refused (an ask waiting on a lease from a restarting store is killed before it is
    /// refused), so, as the checker treats an unknown outcome, the run is within the
    /// ceiling when some outcome of them is: all refused. They still count as possibly
    /// stored (`doubled` is what the store holds beyond admitted and in-doubt calls).
    pub in_doubt: u64,
    /// The service's ceiling per window.
    pub ceiling: u64,
    /// The default mode's stated bound for this run (`None` in the bounded mode, whose
    /// bound is the ceiling).
    pub admitted_bound: Option<u64>,
    /// Whether every check of this service held.
    pub pass: bool,
}

/// The most of `times` (sorted, ms) inside any span of `span` ms.
pub fn most_within(times: &[i64], span: i64) -> u64 {
    let (mut most, mut first) = (0, 0);
    for (last, t) in times.iter().enumerate() {
        while times[first] + span < *t {
            first += 1;
        }
        most = most.max((last - first + 1) as u64);
    }
    most
}

/// The default mode's bound (ARCHITECTURE.md, "Admission across a fleet"): `C` plus what
/// every instance but the one admitting last admitted within `D`, at most `N × C`.
/// `per_instance` holds each instance's admission times.
pub fn default_bound(ceiling: u64, per_instance: &[&[i64]], span_ms: i64) -> u64 {
    let most: Vec<u64> = per_instance
        .iter()
        .map(|times| most_within(times, span_ms))
        .collect();
    let others = most.iter().sum::<u64>() - most.iter().min().copied().unwrap_or(0);
    ceiling
        .saturating_add(others)
        .min(ceiling.saturating_mul(per_instance.len() as u64))
}

/// Judges one service: `workers` with their fates and accounts, what the store holds, the
/// ceiling, and whether the fleet ran bounded.
pub fn judge(
    service: &str,
    workers: &[(Fate, &Account)],
    stored: u64,
    ceiling: u64,
    bounded: bool,
) -> ServiceVerdict {
    let get = |m: &BTreeMap<String, u64>| m.get(service).copied().unwrap_or(0);
    let (mut graceful, mut acked, mut killed, mut unanswered) = (0u64, 0u64, 0u64, 0u64);
    for (fate, account) in workers {
        if *fate == Fate::Killed {
            killed += get(&account.admitted);
            unanswered += get(&account.unanswered);
            acked += account.acked.get(service).copied().unwrap_or(0).max(0) as u64;
        } else {
            graceful += get(&account.admitted);
        }
    }
    let recorded = graceful + killed;
    let (low, high) = (graceful + acked, recorded + unanswered);
    // D: a call is in the store by its instance's next acknowledged sync, and read by
    // another at that one's next: twice the longest gap between acknowledged syncs.
    let span = 2 * workers
        .iter()
        .map(|(_, a)| a.longest_gap_ms)
        .max()
        .unwrap_or(0);
    let times: Vec<&[i64]> = workers
        .iter()
        .map(|(_, a)| a.times.get(service).map_or(&[][..], Vec::as_slice))
        .collect();
    let admitted_bound = (!bounded).then(|| default_bound(ceiling, &times, span));
    let within = recorded <= admitted_bound.unwrap_or(ceiling);
    ServiceVerdict {
        service: service.to_owned(),
        recorded,
        stored,
        lost: recorded.saturating_sub(stored),
        lost_bound: killed.saturating_sub(acked),
        doubled: stored.saturating_sub(high),
        admitted: recorded,
        in_doubt: unanswered,
        ceiling,
        admitted_bound,
        pass: low <= stored && stored <= high && within,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(admitted: u64, unanswered: u64, acked: i64) -> Account {
        Account {
            admitted: [("api".to_owned(), admitted)].into(),
            unanswered: [("api".to_owned(), unanswered)].into(),
            acked: [("api".to_owned(), acked)].into(),
            ..Account::default()
        }
    }

    #[test]
    fn a_killed_workers_unsynced_calls_may_be_lost_and_no_more() {
        let (survivor, killed) = (account(10, 0, 10), account(8, 1, 5));
        let workers = [(Fate::Survived, &survivor), (Fate::Killed, &killed)];
        for stored in 15..=19 {
            let v = judge("api", &workers, stored, 1_000, true);
            assert!(v.pass, "stored {stored}: {v:?}");
            assert_eq!(v.lost_bound, 3);
        }
        let lost = judge("api", &workers, 14, 1_000, true);
        assert!(!lost.pass && lost.lost == 4, "{lost:?}");
        let doubled = judge("api", &workers, 20, 1_000, true);
        assert!(!doubled.pass && doubled.doubled == 1, "{doubled:?}");
    }

    #[test]
    fn a_terminated_worker_must_be_exact_and_the_ceiling_holds_in_the_bounded_mode() {
        let termed = account(10, 0, 10);
        let workers = [(Fate::Terminated, &termed)];
        assert!(
            !judge("api", &workers, 9, 1_000, true).pass,
            "a graceful stop lost one"
        );
        assert!(judge("api", &workers, 10, 1_000, true).pass);
        assert!(
            !judge("api", &workers, 10, 9, true).pass,
            "10 admitted, ceiling 9"
        );
    }

    #[test]
    fn a_killed_workers_unanswered_asks_may_have_been_refused_but_answered_ones_count() {
        // At the ceiling with one ask in doubt: within it if that ask was refused.
        let (full, killed) = (account(600, 0, 600), account(200, 1, 150));
        let workers = [(Fate::Survived, &full), (Fate::Killed, &killed)];
        let v = judge("api", &workers, 780, 800, true);
        assert!(v.pass && v.admitted == 800 && v.in_doubt == 1, "{v:?}");
        // One answered admission past the ceiling fails, killed or not.
        let over = account(201, 0, 150);
        let workers = [(Fate::Survived, &full), (Fate::Killed, &over)];
        let v = judge("api", &workers, 780, 800, true);
        assert!(!v.pass && v.admitted == 801, "{v:?}");
    }

    #[test]
    fn the_default_bound_counts_the_others_admissions_within_the_span() {
        let (a, b): (Vec<i64>, Vec<i64>) = ((0..10).collect(), (100..110).collect());
        assert_eq!(most_within(&a, 4), 5);
        assert_eq!(default_bound(100, &[&a, &b], 4), 105);
        assert_eq!(default_bound(3, &[&a, &b], 4), 6, "at most N x C");
    }
}
