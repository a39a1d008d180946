//! Single-producer single-consumer ring (DPDK `rte_ring` SP/SC).
//!
//! The same slot array and free-running indices as [`super::Ring`], but with no CAS: the
//! producer owns the producer index and caches the consumer's, and vice versa, so the common
//! case touches only the owner's cache line plus one release store.
#![allow(unsafe_code)]

use super::{RingError, Slots};
use crate::burst::Burst;
use crate::sync::{Arc, AtomicU32, Ordering};
use core::cell::Cell;
use core::fmt;
use crossbeam_utils::CachePadded;

struct Shared<T> {
    /// Written by the producer only.
    tail: CachePadded<AtomicU32>,
    /// Written by the consumer only.
    head: CachePadded<AtomicU32>,
    slots: Slots<T>,
}

// SAFETY: slot accesses are serialised by the head/tail protocol between exactly one
// producer and one consumer; values cross threads (T: Send).
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Shared<T> {}

/// The producing half. `Send`, not `Sync`: exactly one thread produces.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    tail: Cell<u32>,
    head_cache: Cell<u32>,
}

/// The consuming half. `Send`, not `Sync`: exactly one thread consumes.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: Cell<u32>,
    tail_cache: Cell<u32>,
}

// SAFETY: the half owns its Arc and Cells; moving it to another thread is fine for T: Send.
unsafe impl<T: Send> Send for Producer<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Consumer<T> {}

/// Creates an SPSC ring of `capacity` slots (a power of two, all usable).
///
/// # Errors
/// [`RingError::BadCapacity`] when the capacity is not a power of two in `1..=2^30`.
///
/// # Examples
/// ```
/// let (tx, rx) = dataplane::ring::spsc::channel::<u32>(4).unwrap();
/// assert_eq!(tx.enqueue_slice(&[1, 2, 3, 4, 5]), 4);
/// let mut out = [0; 4];
/// assert_eq!(rx.dequeue_slice(&mut out), 4);
/// ```
pub fn channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), RingError> {
    let shared = Arc::new(Shared {
        tail: CachePadded::new(AtomicU32::new(0)),
        head: CachePadded::new(AtomicU32::new(0)),
        slots: Slots::new(capacity)?,
    });
    Ok((
        Producer { shared: shared.clone(), tail: Cell::new(0), head_cache: Cell::new(0) },
        Consumer { shared, head: Cell::new(0), tail_cache: Cell::new(0) },
    ))
}

impl<T> Producer<T> {
    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.shared.slots.capacity() as usize
    }

    #[inline(always)]
    fn free(&self, want: u32) -> u32 {
        let cap = self.shared.slots.capacity();
        let tail = self.tail.get();
        let mut free = cap.wrapping_add(self.head_cache.get()).wrapping_sub(tail);
        if free < want {
            // Acquire pairs with the consumer's release: its reads of these slots are done.
            self.head_cache.set(self.shared.head.load(Ordering::Acquire));
            free = cap.wrapping_add(self.head_cache.get()).wrapping_sub(tail);
        }
        free
    }

    /// # Safety
    /// `src[..n]` initialised; the first `returned` are moved into the ring.
    #[inline(always)]
    unsafe fn enqueue_raw(&self, src: *const T, n: usize, bulk: bool) -> usize {
        let want = n.min(u32::MAX as usize) as u32;
        let free = self.free(want);
        let n = if want > free {
            if bulk {
                0
            } else {
                free
            }
        } else {
            want
        };
        if n == 0 {
            return 0;
        }
        let tail = self.tail.get();
        // SAFETY: [tail, tail+n) is free (checked against the acquired consumer head) and only
        // this producer writes slots.
        unsafe { self.shared.slots.write(tail, src, n) };
        let new = tail.wrapping_add(n);
        self.tail.set(new);
        self.shared.tail.store(new, Ordering::Release);
        n as usize
    }

    /// Enqueues one value or hands it back when full.
    #[inline]
    pub fn enqueue(&self, v: T) -> Result<(), T> {
        let v = core::mem::ManuallyDrop::new(v);
        // SAFETY: one initialised value, not dropped here if moved.
        if unsafe { self.enqueue_raw(&*v as *const T, 1, true) } == 1 {
            Ok(())
        } else {
            Err(core::mem::ManuallyDrop::into_inner(v))
        }
    }

    /// Moves as many values from the front of `src` as fit; returns how many.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&self, src: &mut Burst<T, N>) -> usize {
        // SAFETY: src's values are initialised; the moved prefix is forgotten.
        unsafe {
            let n = self.enqueue_raw(src.as_ptr(), src.len(), false);
            src.forget_front(n);
            n
        }
    }

    /// Moves all of `src` or nothing; returns `src.len()` or 0.
    #[inline]
    pub fn enqueue_bulk<const N: usize>(&self, src: &mut Burst<T, N>) -> usize {
        // SAFETY: as above.
        unsafe {
            let n = self.enqueue_raw(src.as_ptr(), src.len(), true);
            src.forget_front(n);
            n
        }
    }
}

impl<T: Copy> Producer<T> {
    /// Copies as many values of `src` as fit; returns how many.
    #[inline]
    pub fn enqueue_slice(&self, src: &[T]) -> usize {
        // SAFETY: T: Copy.
        unsafe { self.enqueue_raw(src.as_ptr(), src.len(), false) }
    }

    /// Copies all of `src` or nothing.
    #[inline]
    pub fn enqueue_slice_bulk(&self, src: &[T]) -> usize {
        // SAFETY: T: Copy.
        unsafe { self.enqueue_raw(src.as_ptr(), src.len(), true) }
    }
}

impl<T> Consumer<T> {
    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.shared.slots.capacity() as usize
    }

    /// Values available (refreshes the cached producer index).
    pub fn len(&self) -> usize {
        self.tail_cache.set(self.shared.tail.load(Ordering::Acquire));
        self.tail_cache.get().wrapping_sub(self.head.get()) as usize
    }

    /// True when nothing is available.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline(always)]
    fn avail(&self, want: u32) -> u32 {
        let head = self.head.get();
        let mut avail = self.tail_cache.get().wrapping_sub(head);
        if avail < want {
            // Acquire pairs with the producer's release: its slot writes are visible.
            self.tail_cache.set(self.shared.tail.load(Ordering::Acquire));
            avail = self.tail_cache.get().wrapping_sub(head);
        }
        avail
    }

    /// # Safety
    /// `dst[..n]` writable; the first `returned` receive values owned by the caller.
    #[inline(always)]
    unsafe fn dequeue_raw(&self, dst: *mut T, n: usize, bulk: bool) -> usize {
        let want = n.min(u32::MAX as usize) as u32;
        let avail = self.avail(want);
        let n = if want > avail {
            if bulk {
                0
            } else {
                avail
            }
        } else {
            want
        };
        if n == 0 {
            return 0;
        }
        let head = self.head.get();
        // SAFETY: [head, head+n) is published (acquired producer tail); only we read slots.
        unsafe { self.shared.slots.read(head, dst, n) };
        let new = head.wrapping_add(n);
        self.head.set(new);
        self.shared.head.store(new, Ordering::Release);
        n as usize
    }

    /// Dequeues one value.
    #[inline]
    pub fn dequeue(&self) -> Option<T> {
        let mut out = core::mem::MaybeUninit::<T>::uninit();
        // SAFETY: room for one; initialised when 1 is returned.
        if unsafe { self.dequeue_raw(out.as_mut_ptr(), 1, true) } == 1 {
            // SAFETY: written just above.
            Some(unsafe { out.assume_init() })
        } else {
            None
        }
    }

    /// Appends up to `max` values to `dst`; returns how many.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&self, dst: &mut Burst<T, N>, max: usize) -> usize {
        let len = dst.len();
        let n = max.min(dst.spare());
        // SAFETY: the spare tail has room for n; set_len covers exactly the written values.
        unsafe {
            let got = self.dequeue_raw(dst.as_mut_ptr().add(len), n, false);
            dst.set_len(len + got);
            got
        }
    }

    /// Appends exactly `n` values or none; returns `n` or 0.
    #[inline]
    pub fn dequeue_bulk<const N: usize>(&self, dst: &mut Burst<T, N>, n: usize) -> usize {
        if n > dst.spare() {
            return 0;
        }
        let len = dst.len();
        // SAFETY: as above.
        unsafe {
            let got = self.dequeue_raw(dst.as_mut_ptr().add(len), n, true);
            dst.set_len(len + got);
            got
        }
    }
}

impl<T: Copy> Consumer<T> {
    /// Fills the front of `dst` with what is available; returns how many.
    #[inline]
    pub fn dequeue_slice(&self, dst: &mut [T]) -> usize {
        // SAFETY: dst writable; T: Copy.
        unsafe { self.dequeue_raw(dst.as_mut_ptr(), dst.len(), false) }
    }

    /// Fills all of `dst` or nothing.
    #[inline]
    pub fn dequeue_slice_bulk(&self, dst: &mut [T]) -> usize {
        // SAFETY: as above.
        unsafe { self.dequeue_raw(dst.as_mut_ptr(), dst.len(), true) }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let from = self.head.load(Ordering::Relaxed);
        let to = self.tail.load(Ordering::Relaxed);
        // SAFETY: both halves are gone (this is the last Arc); [head, tail) hold values.
        unsafe { self.slots.drop_range(from, to) };
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("spsc::Producer").field("capacity", &self.capacity()).finish()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("spsc::Consumer").field("capacity", &self.capacity()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn bulk_and_burst() {
        let (p, c) = channel::<u32>(4).unwrap();
        assert_eq!(p.enqueue_slice(&[1, 2, 3]), 3);
        assert_eq!(p.enqueue_slice_bulk(&[4, 5]), 0);
        assert_eq!(p.enqueue_slice(&[4, 5]), 1);
        let mut out = [0; 8];
        assert_eq!(c.dequeue_slice_bulk(&mut out[..5]), 0);
        assert_eq!(c.dequeue_slice(&mut out), 4);
        assert_eq!(&out[..4], &[1, 2, 3, 4]);
    }

    #[test]
    fn leftovers_dropped_once() {
        let t = std::sync::Arc::new(());
        let (p, c) = channel(8).unwrap();
        for _ in 0..5 {
            p.enqueue(t.clone()).unwrap();
        }
        drop(c.dequeue());
        drop(p);
        assert_eq!(std::sync::Arc::strong_count(&t), 5);
        drop(c);
        assert_eq!(std::sync::Arc::strong_count(&t), 1);
    }

    #[test]
    fn stress_in_order_no_loss() {
        const N: u64 = if cfg!(miri) { 500 } else { 1_000_000 };
        let (p, c) = channel::<u64>(128).unwrap();
        let h = std::thread::spawn(move || {
            let mut i = 0u64;
            let mut buf = [0u64; 32];
            while i < N {
                let k = ((i % 31) + 1).min(N - i) as usize;
                for (j, b) in buf[..k].iter_mut().enumerate() {
                    *b = i + j as u64;
                }
                let n = p.enqueue_slice(&buf[..k]);
                i += n as u64;
                if n == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut expect = 0u64;
        let mut out = [0u64; 32];
        while expect < N {
            let n = c.dequeue_slice(&mut out);
            for v in &out[..n] {
                assert_eq!(*v, expect);
                expect += 1;
            }
            if n == 0 {
                std::thread::yield_now();
            }
        }
        h.join().unwrap();
        assert!(c.is_empty());
    }
}
