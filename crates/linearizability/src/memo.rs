//! The search's memory of explored configurations: a (linearized set, state) pair is
//! explored at most once, and the memory it takes is counted against a budget.
//!
//! Lowe's memoization needs one test per step: has this set of linearized operations, with
//! this state, been seen? The set is a bitset; its hash is kept incrementally (Zobrist: the
//! XOR of a random word per member, updated in O(1) on insert and remove), so the test hashes
//! only the state. Seen sets live back to back in one arena of words, stored from their first
//! word with an unlinearized operation (every operation below it is linearized) to their last
//! non-zero word: no allocation per entry, and a hash match is confirmed by comparing words.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// A random-looking 64-bit word for operation `k` (splitmix64), its Zobrist key.
fn zobrist(k: usize) -> u64 {
    let mut z = (k as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The set of linearized operations of one partition (indexes `0..n`), with its hash.
pub(crate) struct Linearized {
    words: Vec<u64>,
    /// The lowest operation not in the set: every one below it is.
    low: usize,
    /// The highest word with a member, or 0.
    high_word: usize,
    hash: u64,
}

impl Linearized {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            words: vec![0; n.div_ceil(64) + 1],
            low: 0,
            high_word: 0,
            hash: 0,
        }
    }

    pub(crate) fn contains(&self, k: usize) -> bool {
        self.words[k / 64] & (1 << (k % 64)) != 0
    }

    pub(crate) fn insert(&mut self, k: usize) {
        debug_assert!(!self.contains(k), "op {k} linearized twice");
        self.words[k / 64] |= 1 << (k % 64);
        self.hash ^= zobrist(k);
        self.high_word = self.high_word.max(k / 64);
        while self.contains(self.low) {
            self.low += 1;
        }
    }

    pub(crate) fn remove(&mut self, k: usize) {
        debug_assert!(self.contains(k), "op {k} removed but not linearized");
        self.words[k / 64] &= !(1 << (k % 64));
        self.hash ^= zobrist(k);
        self.low = self.low.min(k);
        while self.high_word > 0 && self.words[self.high_word] == 0 {
            self.high_word -= 1;
        }
    }

    /// The words that tell this set from any other: from the one holding `low` to the last
    /// with a member (the words below are all ones).
    fn span(&self) -> (usize, &[u64]) {
        let from = self.low / 64;
        let to = self.high_word.max(from);
        (from, &self.words[from..=to])
    }
}

/// A seen pair: where its set's words are in the arena, and its state.
struct Entry<S> {
    hash: u64,
    start: usize,
    from: u32,
    len: u32,
    state: S,
}

/// What [`Memo::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// A new pair, now remembered: explore it.
    New,
    /// Explored before: skip it.
    Seen,
    /// Remembering it would pass the memory budget: stop the search.
    Full,
}

/// Bytes of memory the searches of one check may take, shared by the partitions (and the
/// histories) checked at once.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most the searches held at once so far, in bytes.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Takes `bytes` more, or refuses (taking nothing) if the limit would be passed.
    fn take(&self, bytes: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(after) = used.checked_add(bytes).filter(|&a| a <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, after, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.peak.fetch_max(after, Ordering::Relaxed);
                    return true;
                }
                Err(now) => used = now,
            }
        }
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Memory is taken from the budget in chunks of this many bytes, so that the shared counter
/// is touched once per chunk, not once per entry.
const CHUNK: usize = 1 << 20;

/// The explored (linearized set, state) pairs of one partition's search.
pub(crate) struct Memo<'b, S> {
    table: HashTable<Entry<S>>,
    arena: Vec<u64>,
    hasher: FxBuildHasher,
    budget: &'b MemoryBudget,
    /// Bytes taken from the budget so far, and the estimate of what is held.
    taken: usize,
    held: usize,
    state_heap: &'b dyn Fn(&S) -> usize,
}

impl<'b, S: Eq + Hash + Clone> Memo<'b, S> {
    /// An empty memo drawing on `budget`; `state_heap` tells the heap bytes a state owns.
    pub(crate) fn new(budget: &'b MemoryBudget, state_heap: &'b dyn Fn(&S) -> usize) -> Self {
        Self {
            table: HashTable::new(),
            arena: Vec::new(),
            hasher: FxBuildHasher,
            budget,
            taken: 0,
            held: 0,
            state_heap,
        }
    }

    /// Remembers `(set, state)` unless it was seen before or the budget is spent.
    pub(crate) fn insert(&mut self, set: &Linearized, state: &S) -> Insert {
        let hash = set.hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.hasher.hash_one(state);
        let (from, words) = set.span();
        let arena = &self.arena;
        let seen = self.table.find(hash, |e| {
            e.hash == hash
                && e.from as usize == from
                && arena[e.start..e.start + e.len as usize] == *words
                && e.state == *state
        });
        if seen.is_some() {
            return Insert::Seen;
        }
        let entry_bytes = std::mem::size_of::<Entry<S>>()
            + std::mem::size_of_val(words)
            + (self.state_heap)(state)
            // The search's node for how it reached the pair (two words).
            + 2 * std::mem::size_of::<usize>()
            // The table's control byte and spare capacity, on average.
            + std::mem::size_of::<Entry<S>>() / 4
            + 1;
        if !self.reserve(entry_bytes) {
            return Insert::Full;
        }
        let (Ok(from), Ok(len)) = (u32::try_from(from), u32::try_from(words.len())) else {
            return Insert::Full;
        };
        let start = self.arena.len();
        self.arena.extend_from_slice(words);
        let entry = Entry {
            hash,
            start,
            from,
            len,
            state: state.clone(),
        };
        self.table.insert_unique(hash, entry, |e: &Entry<S>| e.hash);
        Insert::New
    }

    /// Counts `bytes` more as held, taking chunks from the budget as needed.
    fn reserve(&mut self, bytes: usize) -> bool {
        let needed = self.held + bytes;
        while needed > self.taken {
            let chunk = CHUNK.max(needed - self.taken);
            if !self.budget.take(chunk) {
                return false;
            }
            self.taken += chunk;
        }
        self.held = needed;
        true
    }

    /// Pairs remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

impl<S> Drop for Memo<'_, S> {
    fn drop(&mut self) {
        self.budget.give_back(self.taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_and_state_are_seen_once_whatever_the_order_of_insertion() {
        let budget = MemoryBudget::new(usize::MAX);
        let mut memo: Memo<'_, i64> = Memo::new(&budget, &|_| 0);
        let mut set = Linearized::new(200);
        for k in [3, 130, 64] {
            set.insert(k);
        }
        assert_eq!(memo.insert(&set, &7), Insert::New);
        assert_eq!(memo.insert(&set, &7), Insert::Seen);
        assert_eq!(memo.insert(&set, &8), Insert::New, "another state");
        // The same members reached another way.
        let mut other = Linearized::new(200);
        for k in [64, 5, 130, 3] {
            other.insert(k);
        }
        other.remove(5);
        assert_eq!(memo.insert(&other, &7), Insert::Seen);
        other.insert(0);
        assert_eq!(memo.insert(&other, &7), Insert::New, "another set");
        assert_eq!(memo.len(), 3);
    }

    #[test]
    fn sets_that_differ_only_below_low_or_above_high_are_told_apart() {
        let budget = MemoryBudget::new(usize::MAX);
        let mut memo: Memo<'_, ()> = Memo::new(&budget, &|_| 0);
        let mut a = Linearized::new(300);
        for k in 0..70 {
            a.insert(k);
        }
        let mut b = Linearized::new(300);
        for k in 0..70 {
            b.insert(k);
        }
        b.insert(250);
        assert_eq!(memo.insert(&a, &()), Insert::New);
        assert_eq!(memo.insert(&b, &()), Insert::New);
        b.remove(250);
        assert_eq!(memo.insert(&b, &()), Insert::Seen);
    }

    #[test]
    fn the_budget_refuses_what_would_pass_it_and_gets_everything_back() {
        let budget = MemoryBudget::new(3 * CHUNK);
        {
            let mut memo: Memo<'_, u64> = Memo::new(&budget, &|_| 0);
            let set = Linearized::new(10);
            let mut outcome = Insert::New;
            let mut state = 0;
            while outcome == Insert::New {
                outcome = memo.insert(&set, &state);
                state += 1;
            }
            assert_eq!(outcome, Insert::Full);
            assert!(memo.len() > 1_000, "only {} entries in 3 MiB", memo.len());
            assert!(budget.peak() <= budget.limit());
        }
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
    }
}
