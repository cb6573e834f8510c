//! The implementations under test, each counting one call on a service: the floor, the
//! calibration toy, the seed's rejected alternatives, and the real tracker. Shared by the
//! `quota-bench` tables and the `tight_loop` example, so both measure the same code.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quota_tracker::sync::Backend;
use quota_tracker::{Clock, QuotaConfig, Recorded, ServiceId, Tracker, TrackerOptions};

/// Something that counts one call on a service.
pub trait Recorder: Send + Sync + 'static {
    /// Counts one call on service `service` (0, 1 or 2).
    fn record(&self, service: usize);
}

/// The floor: one shared `AtomicU64::fetch_add` per call. Counts, nothing else.
#[derive(Default)]
pub struct Floor(AtomicU64);

impl Recorder for Floor {
    #[inline]
    fn record(&self, _service: usize) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Lock-free: an atomic per service and one for the total (no consistent snapshot; see the
/// loom verdict in ARCHITECTURE.md).
#[derive(Default)]
pub struct Atomics {
    used: [AtomicU64; 3],
    total: AtomicU64,
}

impl Recorder for Atomics {
    #[inline]
    fn record(&self, service: usize) {
        self.used[service].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }
}

/// The calibration toy: one `parking_lot::Mutex` around three counters (used and pending per
/// service, and a total), nothing else.
#[derive(Default)]
pub struct Toy(parking_lot::Mutex<([u64; 3], [u64; 3], u64)>);

impl Recorder for Toy {
    #[inline]
    fn record(&self, service: usize) {
        let mut counts = self.0.lock();
        counts.0[service] += 1;
        counts.1[service] += 1;
        counts.2 += 1;
    }
}

/// A lock per service, and one for the total.
#[derive(Default)]
pub struct PerServiceLocks {
    used: [parking_lot::Mutex<(u64, u64)>; 3],
    total: parking_lot::Mutex<u64>,
}

impl Recorder for PerServiceLocks {
    #[inline]
    fn record(&self, service: usize) {
        {
            let mut counter = self.used[service].lock();
            counter.0 += 1; // used
            counter.1 += 1; // pending
        }
        *self.total.lock() += 1;
    }
}

/// The real tracker: `Tracker::record_call`, with everything it does.
pub struct Core<B: Backend> {
    tracker: Tracker<B>,
    ids: [ServiceId; 3],
}

impl<B: Backend> Core<B> {
    /// A tracker with the default services (tiingo, finnhub, sendgrid) reading `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let options = TrackerOptions {
            instance: "bench".into(),
            ..TrackerOptions::default()
        };
        let tracker = Tracker::<B>::new_in(QuotaConfig::default(), clock, options);
        let id = |name| tracker.service(name).unwrap_or_else(|e| panic!("{e}"));
        let ids = [id("tiingo"), id("finnhub"), id("sendgrid")];
        Self { tracker, ids }
    }
}

impl<B: Backend> Recorder for Core<B> {
    #[inline]
    fn record(&self, service: usize) {
        match self.tracker.record_call(self.ids[service], 1) {
            Ok(recorded) => consume(&recorded),
            Err(e) => panic!("benchmark call refused: {e}"),
        }
    }
}

/// The real tracker's admission: `Tracker::admit`, deciding and recording in one critical
/// section, on services whose limits are never reached (every call admitted, as on the hot
/// path of a service with quota left).
pub struct Admitter<B: Backend> {
    tracker: Tracker<B>,
    ids: [ServiceId; 3],
}

impl<B: Backend> Admitter<B> {
    /// A tracker with three services of limit `i64::MAX`, reading `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_config(unreachable_limits(), clock)
    }

    /// The same in the bounded mode, each service holding a lease of 5 % of its ceiling
    /// (about 3.7e17 calls: it never runs low in a benchmark), so every call admits from
    /// the local lease, as on the hot path of an instance whose lease has room.
    pub fn bounded(clock: Arc<dyn Clock>) -> Self {
        let config = unreachable_limits().with_leases(quota_tracker::LeasePolicy::default());
        let admitter = Self::with_config(config, clock);
        for id in admitter.ids {
            let request = admitter
                .tracker
                .begin_lease(id)
                .unwrap_or_else(|why| panic!("bounded mode: {why:?}"));
            admitter.tracker.finish_lease(&request, Ok(request.want));
        }
        admitter
    }

    fn with_config(config: QuotaConfig, clock: Arc<dyn Clock>) -> Self {
        let options = TrackerOptions {
            instance: "bench".into(),
            ..TrackerOptions::default()
        };
        let tracker = Tracker::<B>::new_in(config, clock, options);
        let id = |name| tracker.service(name).unwrap_or_else(|e| panic!("{e}"));
        let ids = [id("tiingo"), id("finnhub"), id("sendgrid")];
        Self { tracker, ids }
    }
}

impl<B: Backend> Recorder for Admitter<B> {
    #[inline]
    fn record(&self, service: usize) {
        match self.tracker.admit(self.ids[service], 1) {
            Ok(admission) => {
                std::hint::black_box(admission.reservation.is_some());
                std::hint::black_box(admission.usage.used());
                std::hint::black_box(admission.usage.remaining());
                std::hint::black_box(admission.crossed_critical);
                std::hint::black_box(admission.sync_due);
                std::hint::black_box(admission.reload_due);
                std::hint::black_box(admission.lease_due);
            }
            Err(e) => panic!("benchmark call refused: {e}"),
        }
    }
}

/// Three services of limit `i64::MAX`: no benchmark reaches a ceiling.
fn unreachable_limits() -> QuotaConfig {
    let service = |name: &str| {
        quota_tracker::ServiceConfig::new(name, i64::MAX, quota_tracker::Period::Day)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    QuotaConfig::new(vec![
        service("tiingo"),
        service("finnhub"),
        service("sendgrid"),
    ])
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Uses every field of `recorded`, as a caller that acts on the result would, so none of
/// them is optimized away. Field by field and by value: handing the whole struct to
/// `black_box` would measure the copy of a stack temporary (the bench once did, and a
/// store-forwarding stall on that copy cost more than the whole critical section).
#[inline(always)]
pub fn consume(recorded: &Recorded) {
    std::hint::black_box(recorded.usage.used());
    std::hint::black_box(recorded.usage.remaining());
    std::hint::black_box(recorded.crossed_critical);
    std::hint::black_box(recorded.sync_due);
    std::hint::black_box(recorded.reload_due);
}
