//! `BackgroundSync`: the store I/O on a thread of its own. Recording goes on while a write
//! is stuck in the store, stopping flushes what was recorded, and an instance with nothing
//! pending still sees other instances' calls.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use quota_tracker::{
    BackgroundSync, MemoryStore, QuotaConfig, Store, StoreError, StoredDay, SyncBatch,
    SyncedTracker, TickingClock, Tracker, TrackerOptions, UtcDay,
};

fn synced<S: Store>(instance: &str, store: S) -> Arc<SyncedTracker<S>> {
    let options = TrackerOptions {
        instance: instance.into(),
        ..TrackerOptions::default()
    };
    let tracker = Tracker::with_options(QuotaConfig::default(), TickingClock::start(), options);
    Arc::new(SyncedTracker::new(tracker, store))
}

/// A store whose writes wait until the test opens the gate, and say when one has started.
struct GatedStore {
    inner: MemoryStore,
    open: Mutex<bool>,
    opened: Condvar,
    entered: Mutex<mpsc::Sender<()>>,
}

impl Store for GatedStore {
    fn load_day(&self, day: UtcDay) -> Result<Option<StoredDay>, StoreError> {
        self.inner.load_day(day)
    }

    fn load_windows(
        &self,
        windows: &[quota_tracker::WindowKey],
    ) -> Result<Vec<quota_tracker::StoredWindow>, StoreError> {
        self.inner.load_windows(windows)
    }

    fn apply_batch(&self, batch: &SyncBatch) -> Result<Option<StoredDay>, StoreError> {
        if let Ok(entered) = self.entered.lock() {
            let _ = entered.send(());
        }
        let open = self.open.lock().expect("gate lock");
        let _open = self
            .opened
            .wait_while(open, |open| !*open)
            .expect("gate lock");
        self.inner.apply_batch(batch)
    }
}

impl GatedStore {
    fn open(&self) {
        *self.open.lock().expect("gate lock") = true;
        self.opened.notify_all();
    }
}

/// Opens the gate when dropped: a failing test must not leave the syncer stuck (stopping it
/// joins its thread).
struct OpenOnDrop(Arc<SyncedTracker<GatedStore>>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.store().open();
    }
}

#[test]
fn recording_goes_on_while_the_background_write_is_stuck() {
    let (entered, write_started) = mpsc::channel();
    let store = GatedStore {
        inner: MemoryStore::new(),
        open: Mutex::new(false),
        opened: Condvar::new(),
        entered: Mutex::new(entered),
    };
    let t = synced("stuck", store);
    let tiingo = t.tracker().service("tiingo").expect("configured");
    t.tracker().record_call(tiingo, 1).expect("recorded");
    let syncer = BackgroundSync::start(Arc::clone(&t), Duration::from_millis(1));
    let gate = OpenOnDrop(Arc::clone(&t));
    write_started
        .recv_timeout(Duration::from_secs(10))
        .expect("the syncer started a write");
    // The write is stuck in the store. A recorder that needed the cache lock the syncer
    // held, or waited for the write, would not finish.
    let (done, finished) = mpsc::channel();
    let recorder = {
        let t = Arc::clone(&t);
        std::thread::spawn(move || {
            for _ in 0..1_000 {
                t.tracker().record_call(tiingo, 1).expect("recorded");
                assert!(t.tracker().can_call(tiingo).is_ok());
            }
            let _ = done.send(());
        })
    };
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("1,000 calls recorded while the store write was stuck");
    recorder.join().expect("recorder finished");
    drop(gate);
    let totals = syncer.stop();
    assert!(totals.applied >= 2, "{totals:?}");
    let day = t.tracker().state().day();
    assert_eq!(t.store().inner.total(day), 1_001, "every call landed");
    assert!(t.tracker().unsynced().is_empty());
}

#[test]
fn stopping_syncs_what_was_recorded() {
    let t = synced("flush", MemoryStore::new());
    // A period far longer than the test: only the last sync on stop can write.
    let syncer = BackgroundSync::start(Arc::clone(&t), Duration::from_secs(3_600));
    let recorders: Vec<_> = ["tiingo", "finnhub"]
        .into_iter()
        .map(|name| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                let service = t.tracker().service(name).expect("configured");
                for _ in 0..40 {
                    t.tracker().record_call(service, 1).expect("recorded");
                }
            })
        })
        .collect();
    for recorder in recorders {
        recorder.join().expect("recorder finished");
    }
    assert_eq!(t.store().writes(), 0, "nothing written before the stop");
    let totals = syncer.stop();
    assert_eq!(totals.applied, 1, "{totals:?}");
    let day = t.tracker().state().day();
    assert_eq!(t.store().total(day), 80);
    assert!(t.tracker().unsynced().is_empty());
}

#[test]
fn dropping_the_handle_syncs_what_was_recorded_too() {
    let t = synced("dropped", MemoryStore::new());
    let syncer = BackgroundSync::start(Arc::clone(&t), Duration::from_secs(3_600));
    let service = t.tracker().service("sendgrid").expect("configured");
    for _ in 0..7 {
        t.tracker().record_call(service, 1).expect("recorded");
    }
    drop(syncer);
    let day = t.tracker().state().day();
    assert_eq!(
        t.store().total(day),
        7,
        "the drop's last sync wrote nothing"
    );
    assert!(t.tracker().unsynced().is_empty());
}

#[test]
fn with_nothing_pending_it_reloads_and_sees_other_instances() {
    let store = Arc::new(MemoryStore::new());
    let other = synced("other", Arc::clone(&store));
    let finnhub = other.tracker().service("finnhub").expect("configured");
    other.tracker().record_call(finnhub, 7).expect("recorded");
    other.sync();
    let t = synced("reader", Arc::clone(&store));
    let syncer = BackgroundSync::start(Arc::clone(&t), Duration::from_millis(2));
    let seen = (0..5_000).any(|_| {
        std::thread::sleep(Duration::from_millis(1));
        t.tracker().usage(finnhub).expect("valid").used() == 7
    });
    let totals = syncer.stop();
    assert!(
        seen,
        "the other instance's 7 calls never showed up: {totals:?}"
    );
    assert!(totals.reloads >= 1, "{totals:?}");
}
