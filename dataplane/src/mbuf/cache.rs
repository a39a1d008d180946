//! Per-thread caches of free chunks and the thread-local slot numbers that find them.

use super::MAX_THREAD_CACHES;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// One thread's cache of free chunks. Only the owning thread touches `objs`; the atomics are
/// single-writer and read by statistics and by the pool's final drop.
pub(super) struct ThreadCache {
    pub(super) objs: UnsafeCell<Vec<usize>>,
    pub(super) len: AtomicU32,
    /// Monotonic count of chunks handed out through this slot (owner-written).
    pub(super) gets: AtomicU64,
    /// Monotonic count of chunks returned through this slot (owner-written, release-stored as
    /// the very last access of every put, so a reader that sees it sees a finished put).
    pub(super) puts: AtomicU64,
}

// ---- thread cache slots ----

static SLOTS_USED: [AtomicU64; MAX_THREAD_CACHES / 64] = [const { AtomicU64::new(0) }; MAX_THREAD_CACHES / 64];

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX - 1) };
    static SLOT_GUARD: SlotGuard = const { SlotGuard };
}

const SLOT_UNCLAIMED: usize = usize::MAX - 1;
const SLOT_NONE: usize = usize::MAX;

struct SlotGuard;

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let s = SLOT.with(|c| c.replace(SLOT_NONE));
        if s < MAX_THREAD_CACHES {
            // Release: this thread's cache accesses happen before the next claimer's.
            SLOTS_USED[s / 64].fetch_and(!(1 << (s % 64)), Ordering::Release);
        }
    }
}

/// The calling thread's cache slot, claimed on first use; `SLOT_NONE` when all are taken or
/// the thread is exiting.
#[inline(always)]
pub(super) fn thread_slot() -> usize {
    let s = SLOT.with(|c| c.get());
    if s != SLOT_UNCLAIMED {
        return s;
    }
    claim_slot()
}

#[cold]
fn claim_slot() -> usize {
    for (w, word) in SLOTS_USED.iter().enumerate() {
        let mut cur = word.load(Ordering::Relaxed);
        while cur != u64::MAX {
            let bit = (!cur).trailing_zeros() as usize;
            // Acquire: the previous owner's cache accesses happen before ours.
            match word.compare_exchange_weak(cur, cur | (1 << bit), Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    let s = w * 64 + bit;
                    // Register the guard that frees the slot at thread exit; if the thread is
                    // already tearing down TLS, give the slot back at once.
                    if SLOT_GUARD.try_with(|_| ()).is_err() {
                        word.fetch_and(!(1 << bit), Ordering::Release);
                        SLOT.with(|c| c.set(SLOT_NONE));
                        return SLOT_NONE;
                    }
                    SLOT.with(|c| c.set(s));
                    return s;
                }
                Err(c) => cur = c,
            }
        }
    }
    SLOT.with(|c| c.set(SLOT_NONE));
    SLOT_NONE
}
