//! Counters written by one thread and read by any: the per-core statistics of the data path.
//!
//! A [`Counter`] is an `AtomicU64` updated with a relaxed load and a relaxed store (not a
//! read-modify-write), which compiles to plain moves: no bus lock, no contention, since only
//! the owning core writes it. Readers (the control thread) see a recent value.

use std::sync::atomic::{AtomicU64, Ordering};

/// A single-writer counter. See the module docs.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// Adds `n`. Only one thread may call this on a given counter at a time (the owner);
    /// concurrent adders would lose updates, never corrupt memory.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds 1 (owner only).
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the value (owner only).
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}
