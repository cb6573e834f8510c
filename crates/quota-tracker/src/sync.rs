//! The synchronization facade: the one place that decides which mutex the core runs on.
//!
//! The core is generic over a [`Backend`], so the same code runs on three schedulers:
//!
//! | backend | when | what for |
//! |---|---|---|
//! | [`ParkingLotBackend`] | normal builds | production |
//! | [`StdBackend`] | normal builds | comparison (benchmarks) |
//! | `LoomBackend` | `--cfg loom` | exhaustive interleavings (loom models) |
//! | `ShuttleBackend` | cargo feature `shuttle` | seeded random schedules, replayable |
//!
//! [`DefaultBackend`] is parking_lot normally and loom under `cfg(loom)`, the way tokio's
//! `src/loom/` swaps its primitives. Shuttle is a separate backend rather than a cfg so that one
//! binary can run real threads and shuttle schedules side by side (the `repro` command does).
//!
//! Every backend also keeps a per-thread count of held cache locks (always under loom and
//! shuttle, in debug builds on parking_lot), so a store can assert that it is never called
//! while its caller holds the cache lock (design invariant 2).

use std::ops::DerefMut;

/// A family of synchronization primitives the core can be built on.
pub trait Backend: Send + Sync + 'static {
    /// The mutex type of this backend.
    type Mutex<T: Send>: Lock<T>;

    /// Notes that the current thread acquired a cache lock.
    fn note_lock_acquired();
    /// Notes that the current thread released a cache lock.
    fn note_lock_released();
    /// How many cache locks the current thread holds, or `None` if this build does not track it.
    fn cache_locks_held() -> Option<usize>;
}

/// A mutual-exclusion lock with a guard, as the core needs it.
///
/// Poisoning is ignored: the core never panics while holding a guard, and a poisoned
/// std-style lock still holds consistent data because every mutation validates first.
pub trait Lock<T>: Send + Sync {
    /// The guard returned by [`Lock::lock`].
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;

    /// Creates a lock holding `value`.
    fn new(value: T) -> Self;
    /// Blocks until the lock is acquired.
    fn lock(&self) -> Self::Guard<'_>;
}

/// The backend used when none is named: parking_lot, or loom under `cfg(loom)`.
#[cfg(not(loom))]
pub type DefaultBackend = ParkingLotBackend;
/// The backend used when none is named: parking_lot, or loom under `cfg(loom)`.
#[cfg(loom)]
pub type DefaultBackend = LoomBackend;

/// A mutex that counts, per thread, how many cache locks are held (see [`Backend`]).
// Aligned so that the lock word starts a cache line wherever the tracker is embedded: the
// hot fields that follow it (see `QuotaState`) then share that one line.
#[repr(C, align(64))]
pub(crate) struct CacheLock<B: Backend, T: Send> {
    inner: B::Mutex<T>,
}

/// Guard of a [`CacheLock`]; releasing it updates the per-thread held count.
pub(crate) struct CacheGuard<'a, B: Backend, T: Send + 'a> {
    guard: <B::Mutex<T> as Lock<T>>::Guard<'a>,
}

impl<B: Backend, T: Send> CacheLock<B, T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            inner: B::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> CacheGuard<'_, B, T> {
        let guard = self.inner.lock();
        B::note_lock_acquired();
        CacheGuard { guard }
    }
}

impl<B: Backend, T: Send> Drop for CacheGuard<'_, B, T> {
    fn drop(&mut self) {
        B::note_lock_released();
    }
}

impl<B: Backend, T: Send> std::ops::Deref for CacheGuard<'_, B, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<B: Backend, T: Send> DerefMut for CacheGuard<'_, B, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// Whether the current thread holds any cache lock; `None` where the build does not track it.
pub fn cache_lock_held<B: Backend>() -> Option<bool> {
    B::cache_locks_held().map(|held| held > 0)
}

/// Panics if the current thread holds a cache lock (where the build tracks it).
///
/// Stores call this at the top of every read and write: I/O under the cache lock is the
/// `io-under-lock` bug of the original service. The panic message names the invariant so a
/// model checker's failure reads as the reason, not as a crash.
#[track_caller]
pub fn assert_cache_lock_not_held<B: Backend>(operation: &str) {
    if cache_lock_held::<B>() == Some(true) {
        panic!(
            "invariant violated: no I/O under the cache lock ({operation} called while holding it)"
        );
    }
}

/// Per-thread held-lock counting, shared by the backends that keep it in a thread local.
#[allow(unused_macros)] // used by the backends that track held locks, which depend on cfg
macro_rules! held_counter {
    ($($tls:ident)::+) => {
        $($tls)::+! {
            static HELD: std::cell::Cell<usize> = std::cell::Cell::new(0);
        }
        fn acquired() {
            HELD.with(|held| held.set(held.get() + 1));
        }
        fn released() {
            HELD.with(|held| held.set(held.get().saturating_sub(1)));
        }
        fn held() -> usize {
            HELD.with(|held| held.get())
        }
    };
}

#[cfg(not(loom))]
mod parking_lot_backend {
    use super::{Backend, Lock};

    /// Production backend: `parking_lot::Mutex`.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct ParkingLotBackend;

    #[cfg(debug_assertions)]
    held_counter!(std::thread_local);

    impl Backend for ParkingLotBackend {
        type Mutex<T: Send> = parking_lot::Mutex<T>;

        #[inline]
        fn note_lock_acquired() {
            #[cfg(debug_assertions)]
            acquired();
        }
        #[inline]
        fn note_lock_released() {
            #[cfg(debug_assertions)]
            released();
        }
        fn cache_locks_held() -> Option<usize> {
            #[cfg(debug_assertions)]
            return Some(held());
            #[cfg(not(debug_assertions))]
            None
        }
    }

    impl<T: Send> Lock<T> for parking_lot::Mutex<T> {
        type Guard<'a>
            = parking_lot::MutexGuard<'a, T>
        where
            T: 'a;

        fn new(value: T) -> Self {
            parking_lot::Mutex::new(value)
        }
        #[inline]
        fn lock(&self) -> Self::Guard<'_> {
            parking_lot::Mutex::lock(self)
        }
    }
}
#[cfg(not(loom))]
pub use parking_lot_backend::ParkingLotBackend;

#[cfg(not(loom))]
mod std_backend {
    use super::{Backend, Lock};

    /// `std::sync::Mutex`, for comparison with parking_lot (benchmarks). It does not track
    /// held locks.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct StdBackend;

    impl Backend for StdBackend {
        type Mutex<T: Send> = std::sync::Mutex<T>;

        fn note_lock_acquired() {}
        fn note_lock_released() {}
        fn cache_locks_held() -> Option<usize> {
            None
        }
    }

    impl<T: Send> Lock<T> for std::sync::Mutex<T> {
        type Guard<'a>
            = std::sync::MutexGuard<'a, T>
        where
            T: 'a;

        fn new(value: T) -> Self {
            std::sync::Mutex::new(value)
        }
        #[inline]
        fn lock(&self) -> Self::Guard<'_> {
            std::sync::Mutex::lock(self).unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}
#[cfg(not(loom))]
pub use std_backend::StdBackend;

/// A backend over a std-like mutex (`lock()` returns a `LockResult`) from a model checker,
/// which always tracks held cache locks in that checker's own thread locals.
#[allow(unused_macros)] // used under cfg(loom) and the shuttle feature
macro_rules! model_checker_backend {
    ($(#[$doc:meta])* $name:ident, $module:ident, $krate:ident) => {
        mod $module {
            use super::{Backend, Lock};

            $(#[$doc])*
            #[derive(Debug, Clone, Copy, Default)]
            pub struct $name;

            held_counter!($krate::thread_local);

            impl Backend for $name {
                type Mutex<T: Send> = $krate::sync::Mutex<T>;

                fn note_lock_acquired() {
                    acquired();
                }
                fn note_lock_released() {
                    released();
                }
                fn cache_locks_held() -> Option<usize> {
                    Some(held())
                }
            }

            impl<T: Send> Lock<T> for $krate::sync::Mutex<T> {
                type Guard<'a>
                    = $krate::sync::MutexGuard<'a, T>
                where
                    T: 'a;

                fn new(value: T) -> Self {
                    $krate::sync::Mutex::new(value)
                }
                fn lock(&self) -> Self::Guard<'_> {
                    $krate::sync::Mutex::lock(self)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                }
            }
        }
        pub use $module::$name;
    };
}

#[cfg(loom)]
model_checker_backend!(
    /// Backend for loom models: `loom::sync::Mutex`, built only under `--cfg loom`.
    LoomBackend,
    loom_backend,
    loom
);

#[cfg(feature = "shuttle")]
model_checker_backend!(
    /// Backend for shuttle schedules: `shuttle::sync::Mutex` (cargo feature `shuttle`).
    ///
    /// Its primitives only work inside a shuttle execution (`shuttle::Runner::run`).
    ShuttleBackend,
    shuttle_backend,
    shuttle
);

#[cfg(all(test, debug_assertions, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn tracks_whether_this_thread_holds_a_cache_lock() {
        let lock: CacheLock<ParkingLotBackend, u32> = CacheLock::new(0);
        assert_eq!(cache_lock_held::<ParkingLotBackend>(), Some(false));
        let guard = lock.lock();
        assert_eq!(cache_lock_held::<ParkingLotBackend>(), Some(true));
        let other = std::thread::spawn(cache_lock_held::<ParkingLotBackend>)
            .join()
            .expect("thread ran");
        assert_eq!(other, Some(false), "another thread holds nothing");
        drop(guard);
        assert_eq!(cache_lock_held::<ParkingLotBackend>(), Some(false));
    }

    #[test]
    fn the_std_backend_says_it_does_not_track_rather_than_a_count() {
        let lock: CacheLock<StdBackend, u32> = CacheLock::new(0);
        let _guard = lock.lock();
        assert_eq!(StdBackend::cache_locks_held(), None);
        assert_eq!(cache_lock_held::<StdBackend>(), None);
        assert_cache_lock_not_held::<StdBackend>("store write (not checked)");
    }

    #[test]
    #[should_panic(expected = "invariant violated: no I/O under the cache lock (store write")]
    fn store_io_under_the_cache_lock_is_caught() {
        let lock: CacheLock<ParkingLotBackend, u32> = CacheLock::new(0);
        let _guard = lock.lock();
        assert_cache_lock_not_held::<ParkingLotBackend>("store write");
    }
}
