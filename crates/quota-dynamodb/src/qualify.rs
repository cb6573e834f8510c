//! Qualifying an endpoint: does this DynamoDB-compatible server lose, double or fail to
//! serialise concurrent updates? (Emulators have: moto's threaded server lost a few of 2,000
//! concurrent `ADD`s, and returned one counter value to two `ADD`s.)
//!
//! [`qualify`] measures ([`Qualification`]); [`Findings`] counts the anomalies by kind and
//! names the worst as a [`Verdict`] (`lost` > `doubled` > `non-atomic` > `ok`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_smithy_types::error::display::DisplayErrorContext;
use quota_tracker::{StoreError, StoreErrorKind, SystemClock};

use crate::client::{DynamoConfig, connect};
use crate::item::number;
use crate::store::DynamoStore;

/// What [`qualify`] found: the raw figures of one run.
///
/// The findings derived from them are in [`Qualification::findings`] and
/// [`Qualification::verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualification {
    /// Concurrent writers.
    pub writers: usize,
    /// Operations per writer (of each kind).
    pub ops: u64,
    /// `ADD 1` operations acknowledged: what the counter must end at.
    pub expected: u64,
    /// What the counter ended at (consistent read).
    pub observed: u64,
    /// Acknowledged increments missing from the counter (`expected - observed`, or 0).
    pub lost: u64,
    /// Increments counted beyond those acknowledged (`observed - expected`, or 0).
    pub doubled: u64,
    /// `ADD`s that returned a counter value another `ADD` also returned (each must see its
    /// own: a repeated value means two increments were not serialised). Counts the extra
    /// returns: three `ADD`s returning 7 count 2.
    pub repeated_returns: u64,
    /// Compare-and-set increments that reported success.
    pub cas_succeeded: u64,
    /// The register's final value: what the successful compare-and-sets must add up to.
    pub cas_observed: u64,
    /// Successful compare-and-sets that had read a register value another successful one
    /// had also read (the condition `v = seen` held for both: they were not serialised).
    /// Counts the extra successes, as [`repeated_returns`](Self::repeated_returns) does.
    pub cas_same_read: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Qualification {
    /// The counts behind the verdict, one per kind of anomaly.
    pub fn findings(&self) -> Findings {
        Findings {
            lost: self.lost,
            doubled: self.doubled,
            repeated_returns: self.repeated_returns,
            cas_failed_but_applied: self.cas_observed.saturating_sub(self.cas_succeeded),
            cas_succeeded_unapplied: self.cas_succeeded.saturating_sub(self.cas_observed),
            cas_same_read: self.cas_same_read,
        }
    }

    /// The worst finding, or `Verdict::Ok`: see `Findings::verdict` (lost, then doubled, then
    /// non-atomic).
    pub fn verdict(&self) -> Verdict {
        self.findings().verdict()
    }

    /// Whether the endpoint lost, doubled and broke atomicity nowhere
    /// (the verdict is `Verdict::Ok`).
    pub fn passed(&self) -> bool {
        self.verdict() == Verdict::Ok
    }
}

/// The anomalies of one run, counted by kind. A pure value: [`Findings::verdict`] and
/// [`Findings::kinds`] depend on these counts alone.
///
/// The compare-and-set counts can overlap: two compare-and-sets succeeding from one read
/// both write the same value, so the register also ends one short of the successes
/// ([`cas_same_read`](Self::cas_same_read) and
/// [`cas_succeeded_unapplied`](Self::cas_succeeded_unapplied) both count it); a success that
/// did not apply leaves the next writer reading the same value, which can show in both too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Findings {
    /// Acknowledged `ADD`s missing from the counter: [`Verdict::Lost`].
    pub lost: u64,
    /// Increments counted beyond the acknowledged `ADD`s: [`Verdict::Doubled`].
    pub doubled: u64,
    /// Repeated `ADD` return values: [`Verdict::NonAtomic`].
    pub repeated_returns: u64,
    /// How far the register ended above the successful compare-and-sets: writes that
    /// reported a failed condition (or an error) but applied. [`Verdict::NonAtomic`].
    pub cas_failed_but_applied: u64,
    /// How far the register ended below the successful compare-and-sets: successes that did
    /// not apply (or applied over one another). [`Verdict::NonAtomic`].
    pub cas_succeeded_unapplied: u64,
    /// Extra compare-and-set successes from an already used read value:
    /// [`Verdict::NonAtomic`].
    pub cas_same_read: u64,
}

impl Findings {
    /// All the non-atomic signals added up: repeated returns and the three compare-and-set
    /// anomalies (signals, not distinct events: see the type's note on overlap).
    pub fn non_atomic(&self) -> u64 {
        self.repeated_returns
            + self.cas_failed_but_applied
            + self.cas_succeeded_unapplied
            + self.cas_same_read
    }

    /// Every kind of finding with a non-zero count, worst first (empty when nothing was
    /// found).
    pub fn kinds(&self) -> Vec<Verdict> {
        [
            (Verdict::Lost, self.lost),
            (Verdict::Doubled, self.doubled),
            (Verdict::NonAtomic, self.non_atomic()),
        ]
        .into_iter()
        .filter(|&(_, count)| count > 0)
        .map(|(kind, _)| kind)
        .collect()
    }

    /// The worst finding, in the order of [`Verdict`]: lost, then doubled, then non-atomic;
    /// [`Verdict::Ok`] when every count is zero.
    pub fn verdict(&self) -> Verdict {
        self.kinds().first().copied().unwrap_or(Verdict::Ok)
    }
}

/// What a run says about the endpoint, ordered from best to worst (`Ok < NonAtomic <
/// Doubled < Lost`): a verdict names the worst finding of the run.
///
/// - `Lost` is worst: the endpoint acknowledged increments it did not keep, so a quota
///   counted on it under-counts silently (the bug this project hunts).
/// - `Doubled`: it counted increments nobody acknowledged; a quota over-counts (refuses
///   early), still wrong.
/// - `NonAtomic`: the totals may be right, but concurrent operations were not serialised:
///   an `ADD` returned a value another had returned, or a compare-and-set's reported outcome
///   disagrees with the register. Results of single operations cannot be trusted.
/// - `Ok`: none of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Nothing lost, doubled or non-atomic.
    Ok,
    /// Totals kept, but operations not serialised (repeated returns, compare-and-set
    /// anomalies).
    NonAtomic,
    /// Increments counted beyond those acknowledged.
    Doubled,
    /// Acknowledged increments missing.
    Lost,
}

impl Verdict {
    /// The name printed by `store-check`: `ok`, `non-atomic`, `doubled` or `lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::NonAtomic => "non-atomic",
            Verdict::Doubled => "doubled",
            Verdict::Lost => "lost",
        }
    }

    /// What the verdict means, in a few words (for a report line).
    pub fn meaning(self) -> &'static str {
        match self {
            Verdict::Ok => "nothing lost, doubled or non-atomic",
            Verdict::NonAtomic => "concurrent operations were NOT SERIALISED",
            Verdict::Doubled => "increments were counted BEYOND those acknowledged",
            Verdict::Lost => "acknowledged increments are MISSING",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many values of a sorted slice repeat an earlier one.
fn repeats(sorted: &[u64]) -> u64 {
    sorted.windows(2).filter(|w| w[0] == w[1]).count() as u64
}

fn read_number(item: Option<&HashMap<String, AttributeValue>>, name: &str) -> Option<u64> {
    item?.get(name)?.as_n().ok()?.parse().ok()
}

fn failed(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Unavailable, "store-check", message)
}

/// Runs `writers` concurrent writers, each doing `ops` `ADD 1`s on one counter and `ops`
/// compare-and-set increments of one register, then reads both back.
pub async fn qualify(
    config: &DynamoConfig,
    writers: usize,
    ops: u64,
) -> Result<Qualification, StoreError> {
    qualify_client(connect(config).await, &config.table, writers, ops).await
}

/// [`qualify`] through a client built by the caller (a test injects faults this way), on
/// `table` (created if missing).
pub async fn qualify_client(
    client: Client,
    table: &str,
    writers: usize,
    ops: u64,
) -> Result<Qualification, StoreError> {
    DynamoStore::new(client.clone(), table, Arc::new(SystemClock))
        .create_table_if_missing()
        .await?;
    let started = Instant::now();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    // Fresh items per run, so leftovers of earlier runs never count.
    let run = format!("store-check-{}-{nanos}", std::process::id());
    let key = |name: &str| {
        HashMap::from([
            (
                "PK".to_owned(),
                AttributeValue::S("SYSTEM#STORE-CHECK".to_owned()),
            ),
            ("SK".to_owned(), AttributeValue::S(format!("{run}-{name}"))),
        ])
    };
    let (counter, register) = (key("counter"), key("register"));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (client, table) = (client.clone(), table.to_owned());
            let (counter, register) = (counter.clone(), register.clone());
            tokio::spawn(async move { writer(&client, &table, counter, register, ops).await })
        })
        .collect();
    let mut returns = Vec::new();
    let mut cas_reads = Vec::new();
    for task in tasks {
        let (values, reads) = task
            .await
            .map_err(|e| failed(format!("a writer stopped: {e}")))??;
        returns.extend(values);
        cas_reads.extend(reads);
    }
    let read = |key: HashMap<String, AttributeValue>| {
        let (client, table) = (client.clone(), table.to_owned());
        async move {
            client
                .get_item()
                .table_name(table)
                .set_key(Some(key))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| failed(format!("reading back: {}", DisplayErrorContext(&e))))
        }
    };
    let observed = read_number(read(counter).await?.item(), "c").unwrap_or(0);
    let cas_observed = read_number(read(register).await?.item(), "v").unwrap_or(0);
    let expected = returns.len() as u64;
    returns.sort_unstable();
    cas_reads.sort_unstable();
    Ok(Qualification {
        writers,
        ops,
        expected,
        observed,
        lost: expected.saturating_sub(observed),
        doubled: observed.saturating_sub(expected),
        repeated_returns: repeats(&returns),
        cas_succeeded: cas_reads.len() as u64,
        cas_observed,
        cas_same_read: repeats(&cas_reads),
        elapsed: started.elapsed(),
    })
}

async fn writer(
    client: &Client,
    table: &str,
    counter: HashMap<String, AttributeValue>,
    register: HashMap<String, AttributeValue>,
    ops: u64,
) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
    let mut returned = Vec::with_capacity(ops as usize);
    for _ in 0..ops {
        let output = client
            .update_item()
            .table_name(table)
            .set_key(Some(counter.clone()))
            .update_expression("ADD c :one")
            .expression_attribute_values(":one", number(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| failed(format!("ADD: {}", DisplayErrorContext(&e))))?;
        returned.push(read_number(output.attributes.as_ref(), "c").unwrap_or(0));
    }
    // The register value each successful compare-and-set had read (0: absent).
    let mut succeeded = Vec::new();
    for _ in 0..ops {
        let current = client
            .get_item()
            .table_name(table)
            .set_key(Some(register.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed(format!("read: {}", DisplayErrorContext(&e))))?;
        let seen = read_number(current.item(), "v");
        let mut update = client
            .update_item()
            .table_name(table)
            .set_key(Some(register.clone()))
            .update_expression("SET v = :next")
            .expression_attribute_values(":next", number(seen.unwrap_or(0) + 1));
        update = match seen {
            Some(value) => update
                .condition_expression("v = :seen")
                .expression_attribute_values(":seen", number(value)),
            None => update.condition_expression("attribute_not_exists(v)"),
        };
        match update.send().await {
            Ok(_) => succeeded.push(seen.unwrap_or(0)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
            Err(e) => {
                return Err(failed(format!(
                    "conditional write: {}",
                    DisplayErrorContext(&e)
                )));
            }
        }
    }
    Ok((returned, succeeded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qualification(expected: u64, observed: u64) -> Qualification {
        Qualification {
            writers: 64,
            ops: 32,
            expected,
            observed,
            lost: expected.saturating_sub(observed),
            doubled: observed.saturating_sub(expected),
            repeated_returns: 0,
            cas_succeeded: 100,
            cas_observed: 100,
            cas_same_read: 0,
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn each_verdict_says_what_it_means() {
        for (verdict, says) in [
            (Verdict::Ok, "nothing lost, doubled or non-atomic"),
            (Verdict::NonAtomic, "NOT SERIALISED"),
            (Verdict::Doubled, "BEYOND those acknowledged"),
            (Verdict::Lost, "MISSING"),
        ] {
            assert!(
                verdict.meaning().contains(says),
                "{verdict}: {}",
                verdict.meaning()
            );
        }
    }

    #[test]
    fn counters_are_read_as_numbers_or_not_at_all() {
        let item = HashMap::from([
            ("n".to_owned(), AttributeValue::N("42".to_owned())),
            ("s".to_owned(), AttributeValue::S("42".to_owned())),
        ]);
        assert_eq!(read_number(Some(&item), "n"), Some(42));
        assert_eq!(read_number(Some(&item), "s"), None);
        assert_eq!(read_number(Some(&item), "missing"), None);
        assert_eq!(read_number(None, "n"), None);
    }

    #[test]
    fn nothing_found_is_ok() {
        let findings = Findings::default();
        assert_eq!(findings.verdict(), Verdict::Ok);
        assert!(findings.kinds().is_empty());
        assert_eq!(findings.non_atomic(), 0);
        let clean = qualification(2_048, 2_048);
        assert_eq!(clean.findings(), Findings::default());
        assert!(clean.passed());
    }

    /// The stock moto server's run: the count exact, one `ADD` return repeated. Non-atomic,
    /// not lost or doubled (the old verdict said "lost-or-doubled" with both at zero).
    #[test]
    fn a_repeated_add_return_alone_is_non_atomic() {
        let moto = Qualification {
            repeated_returns: 1,
            ..qualification(2_048, 2_048)
        };
        let findings = moto.findings();
        assert_eq!((findings.lost, findings.doubled), (0, 0));
        assert_eq!(findings.non_atomic(), 1);
        assert_eq!(moto.verdict(), Verdict::NonAtomic);
        assert_eq!(moto.verdict().as_str(), "non-atomic");
        assert_eq!(findings.kinds(), vec![Verdict::NonAtomic]);
        assert!(!moto.passed());
    }

    #[test]
    fn each_compare_and_set_anomaly_is_non_atomic() {
        // The register ended above the successes: a failed compare-and-set applied.
        let above = Qualification {
            cas_observed: 101,
            ..qualification(10, 10)
        };
        assert_eq!(above.findings().cas_failed_but_applied, 1);
        assert_eq!(above.findings().cas_succeeded_unapplied, 0);
        assert_eq!(above.verdict(), Verdict::NonAtomic);
        // Below: a success that did not apply.
        let below = Qualification {
            cas_observed: 97,
            ..qualification(10, 10)
        };
        assert_eq!(below.findings().cas_succeeded_unapplied, 3);
        assert_eq!(below.findings().cas_failed_but_applied, 0);
        assert_eq!(below.verdict(), Verdict::NonAtomic);
        // Two successes from one read value (the register also one short).
        let same_read = Qualification {
            cas_observed: 99,
            cas_same_read: 1,
            ..qualification(10, 10)
        };
        assert_eq!(same_read.findings().cas_same_read, 1);
        assert_eq!(same_read.findings().non_atomic(), 2);
        assert_eq!(same_read.verdict(), Verdict::NonAtomic);
        // A same-read pair counted alone (as a pure count) is non-atomic too.
        let findings = Findings {
            cas_same_read: 1,
            ..Findings::default()
        };
        assert_eq!(findings.verdict(), Verdict::NonAtomic);
    }

    #[test]
    fn lost_and_doubled_name_themselves() {
        let lost = qualification(2_000, 1_995);
        assert_eq!(lost.findings().lost, 5);
        assert_eq!(lost.verdict(), Verdict::Lost);
        assert_eq!(lost.verdict().as_str(), "lost");
        let doubled = qualification(2_000, 2_003);
        assert_eq!(doubled.findings().doubled, 3);
        assert_eq!(doubled.verdict(), Verdict::Doubled);
        assert_eq!(doubled.verdict().to_string(), "doubled");
    }

    #[test]
    fn the_verdict_is_the_worst_finding_and_kinds_lists_all_worst_first() {
        let all = Findings {
            lost: 1,
            doubled: 1,
            repeated_returns: 1,
            cas_failed_but_applied: 1,
            cas_succeeded_unapplied: 1,
            cas_same_read: 1,
        };
        assert_eq!(all.verdict(), Verdict::Lost);
        assert_eq!(
            all.kinds(),
            vec![Verdict::Lost, Verdict::Doubled, Verdict::NonAtomic]
        );
        let doubled_and_non_atomic = Findings { lost: 0, ..all };
        assert_eq!(doubled_and_non_atomic.verdict(), Verdict::Doubled);
        let lost_and_non_atomic = Findings { doubled: 0, ..all };
        assert_eq!(lost_and_non_atomic.verdict(), Verdict::Lost);
        assert_eq!(
            lost_and_non_atomic.kinds(),
            vec![Verdict::Lost, Verdict::NonAtomic]
        );
        // The documented order.
        assert!(Verdict::Ok < Verdict::NonAtomic);
        assert!(Verdict::NonAtomic < Verdict::Doubled);
        assert!(Verdict::Doubled < Verdict::Lost);
    }

    #[test]
    fn repeats_counts_the_extra_copies() {
        assert_eq!(repeats(&[]), 0);
        assert_eq!(repeats(&[1, 2, 3]), 0);
        assert_eq!(repeats(&[1, 2, 2, 3]), 1);
        assert_eq!(repeats(&[7, 7, 7]), 2);
    }
}
