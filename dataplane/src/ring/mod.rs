//! Bounded lock-free rings with DPDK's semantics.
//!
//! Algorithm: DPDK's `rte_ring` — a power-of-two array of slots and two head/tail pairs with
//! free-running 32-bit indices masked on access. A producer reserves slots by moving the
//! producer head (a CAS for [`Ring`], a plain store for [`spsc`]), writes them, then publishes
//! them by moving the producer tail once every earlier producer has published; consumers
//! mirror this on the consumer pair. Heads and tails sit on their own cache lines.
//! Like `rte_ring` in its default mode the MPMC ring is not lock-free in the strict sense: a
//! producer preempted between reserving and publishing delays later producers' publication.
//!
//! Naming follows DPDK: `_burst` moves as many values as fit and returns the count; `_bulk`
//! moves all of them or none. The indices are free-running, so the whole capacity is usable.
//!
//! - [`Ring`]: multi-producer multi-consumer; share it by reference or `Arc`.
//! - [`spsc::channel`]: single-producer single-consumer, split into a `Producer` and a
//!   `Consumer` that are `Send` but not `Sync`, each caching the other side's index.
#![allow(unsafe_code)]

pub mod spsc;

use crate::burst::Burst;
use crate::sync::{spin, AtomicU32, Ordering, Slot};
use core::fmt;
use crossbeam_utils::CachePadded;

/// Largest capacity a ring can have (indices are 32-bit and free-running).
pub const MAX_CAPACITY: usize = 1 << 30;

/// Why a ring could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// Capacity 0, not a power of two, or above [`MAX_CAPACITY`].
    #[error("ring capacity {0} must be a power of two between 1 and 2^30")]
    BadCapacity(usize),
}

pub(crate) struct HeadTail {
    pub(crate) head: AtomicU32,
    pub(crate) tail: AtomicU32,
}

impl HeadTail {
    fn new() -> Self {
        HeadTail { head: AtomicU32::new(0), tail: AtomicU32::new(0) }
    }
}

/// The slot array shared by both ring kinds.
pub(crate) struct Slots<T> {
    slots: Box<[Slot<T>]>,
    mask: u32,
}

impl<T> Slots<T> {
    pub(crate) fn new(capacity: usize) -> Result<Self, RingError> {
        if capacity == 0 || !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
            return Err(RingError::BadCapacity(capacity));
        }
        Ok(Slots { slots: (0..capacity).map(|_| Slot::new()).collect(), mask: capacity as u32 - 1 })
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// Moves `n` values from `src` into the slots starting at free-running index `start`.
    ///
    /// # Safety
    /// The caller reserved `[start, start + n)` exclusively, those slots are empty, and
    /// `src[..n]` are initialised values whose ownership passes to the ring.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, start: u32, src: *const T, n: u32) {
        #[cfg(not(loom))]
        {
            let idx = (start & self.mask) as usize;
            let first = (n as usize).min(self.slots.len() - idx);
            let base = self.slots.as_ptr() as *mut T;
            // SAFETY: Slot<T> is repr(transparent) over UnsafeCell<MaybeUninit<T>>: an array of T
            // writable through &self; [idx, idx+first) and [0, n-first) are in bounds (first <=
            // len - idx, n <= cap), reserved by the caller, and `src[..n]` is valid.
            unsafe {
                core::ptr::copy_nonoverlapping(src, base.add(idx), first);
                core::ptr::copy_nonoverlapping(src.add(first), base, n as usize - first);
            }
        }
        #[cfg(loom)]
        for i in 0..n {
            let idx = (start.wrapping_add(i) & self.mask) as usize;
            // SAFETY: idx < capacity; the slot is reserved by the caller and `src.add(i)` is
            // within the caller's n initialised values.
            unsafe { self.slots[idx].write(src.add(i as usize).read()) };
        }
    }

    /// Moves `n` values out of the slots starting at `start` into `dst`.
    ///
    /// # Safety
    /// The caller reserved `[start, start + n)` exclusively, those slots hold published values,
    /// and `dst[..n]` is writable.
    #[inline(always)]
    pub(crate) unsafe fn read(&self, start: u32, dst: *mut T, n: u32) {
        #[cfg(not(loom))]
        {
            let idx = (start & self.mask) as usize;
            let first = (n as usize).min(self.slots.len() - idx);
            let base = self.slots.as_ptr() as *const T;
            // SAFETY: as in `write`; the slots hold published values which are moved out
            // (bitwise) exactly once, the caller treats them as logically empty afterwards.
            unsafe {
                core::ptr::copy_nonoverlapping(base.add(idx), dst, first);
                core::ptr::copy_nonoverlapping(base, dst.add(first), n as usize - first);
            }
        }
        #[cfg(loom)]
        for i in 0..n {
            let idx = (start.wrapping_add(i) & self.mask) as usize;
            // SAFETY: as in `write`; the value is moved out exactly once.
            unsafe { dst.add(i as usize).write(self.slots[idx].read()) };
        }
    }

    /// Drops the values in `[from, to)`.
    ///
    /// # Safety
    /// Those slots hold initialised values and nobody else accesses the ring.
    pub(crate) unsafe fn drop_range(&self, from: u32, to: u32) {
        let mut i = from;
        while i != to {
            // SAFETY: contract of the caller.
            drop(unsafe { self.slots[(i & self.mask) as usize].read() });
            i = i.wrapping_add(1);
        }
    }
}

/// How many values a move asks for: as many as fit, or exactly all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behavior {
    Burst,
    Bulk,
}

/// A multi-producer multi-consumer bounded ring (DPDK `rte_ring` MP/MC).
///
/// # Examples
/// ```
/// use dataplane::ring::Ring;
/// let r = Ring::new(8).unwrap();
/// assert_eq!(r.enqueue_slice(&[1u64, 2, 3]), 3);
/// let mut out = [0u64; 8];
/// assert_eq!(r.dequeue_slice(&mut out), 3);
/// assert_eq!(&out[..3], &[1, 2, 3]);
/// ```
pub struct Ring<T> {
    prod: CachePadded<HeadTail>,
    cons: CachePadded<HeadTail>,
    slots: Slots<T>,
}

// SAFETY: values move between threads through the ring (hence T: Send); every slot access is
// serialised by the head/tail protocol, so sharing `&Ring` is sound.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: the ring owns its values; moving it moves them (T: Send).
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of `capacity` slots (a power of two); all of them are usable.
    ///
    /// # Errors
    /// [`RingError::BadCapacity`] when the capacity is not a power of two in `1..=2^30`.
    pub fn new(capacity: usize) -> Result<Self, RingError> {
        Ok(Ring {
            prod: CachePadded::new(HeadTail::new()),
            cons: CachePadded::new(HeadTail::new()),
            slots: Slots::new(capacity)?,
        })
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.capacity() as usize
    }

    /// Number of values published and not yet taken (a snapshot).
    pub fn len(&self) -> usize {
        let p = self.prod.tail.load(Ordering::Acquire);
        let c = self.cons.tail.load(Ordering::Acquire);
        (p.wrapping_sub(c) as usize).min(self.capacity())
    }

    /// True when no value is published (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free slots (a snapshot).
    pub fn free_count(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Reserves up to `n` slots for producing; returns (start, count).
    #[inline(always)]
    fn prod_reserve(&self, n: u32, b: Behavior) -> (u32, u32) {
        let cap = self.slots.capacity();
        // The head is read with acquire, and moved with a release CAS, so that whoever reads a
        // head value also sees a consumer tail at least as new as the one its mover saw: a
        // tail older than the head would make `free` wrap around and let us overwrite slots
        // that are not consumed yet (DPDK's rte_ring_c11 puts an acquire fence here).
        let mut old = self.prod.head.load(Ordering::Acquire);
        loop {
            // Acquire pairs with the consumers' release of cons.tail: their reads of the slots
            // we are about to overwrite happened before.
            let free = cap.wrapping_add(self.cons.tail.load(Ordering::Acquire)).wrapping_sub(old);
            if free > cap {
                // Cannot happen with the orderings above; be safe on any memory model.
                old = self.prod.head.load(Ordering::Acquire);
                spin(0);
                continue;
            }
            let n = if n > free {
                match b {
                    Behavior::Bulk => 0,
                    Behavior::Burst => free,
                }
            } else {
                n
            };
            if n == 0 {
                return (old, 0);
            }
            match self.prod.head.compare_exchange_weak(old, old.wrapping_add(n), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return (old, n),
                Err(cur) => old = cur,
            }
        }
    }

    #[inline(always)]
    fn cons_reserve(&self, n: u32, b: Behavior) -> (u32, u32) {
        let cap = self.slots.capacity();
        // Acquire: see prod_reserve; here a stale producer tail would make `avail` wrap and
        // let us read slots that are not published yet.
        let mut old = self.cons.head.load(Ordering::Acquire);
        loop {
            // Acquire pairs with the producers' release of prod.tail: their slot writes are
            // visible.
            let avail = self.prod.tail.load(Ordering::Acquire).wrapping_sub(old);
            if avail > cap {
                old = self.cons.head.load(Ordering::Acquire);
                spin(0);
                continue;
            }
            let n = if n > avail {
                match b {
                    Behavior::Bulk => 0,
                    Behavior::Burst => avail,
                }
            } else {
                n
            };
            if n == 0 {
                return (old, 0);
            }
            match self.cons.head.compare_exchange_weak(old, old.wrapping_add(n), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return (old, n),
                Err(cur) => old = cur,
            }
        }
    }

    /// Publishes `[old, old + n)` once every earlier reservation on `ht` is published.
    #[inline(always)]
    fn publish(ht: &HeadTail, old: u32, n: u32) {
        // Acquire: the earlier publisher's slot work happens before our release below, so a
        // consumer that acquires our tail sees it too.
        let mut spins = 0;
        while ht.tail.load(Ordering::Acquire) != old {
            spin(spins);
            spins = spins.saturating_add(1);
        }
        ht.tail.store(old.wrapping_add(n), Ordering::Release);
    }

    /// Moves up to `n` values from `src` into the ring; returns how many.
    ///
    /// # Safety
    /// `src[..n]` are initialised; the first `returned` of them are moved (the caller must not
    /// use or drop them afterwards).
    #[inline(always)]
    unsafe fn enqueue_raw(&self, src: *const T, n: usize, b: Behavior) -> usize {
        let (start, got) = self.prod_reserve(n.min(u32::MAX as usize) as u32, b);
        if got == 0 {
            return 0;
        }
        // SAFETY: [start, start+got) is reserved for us and empty (cons.tail acquired).
        unsafe { self.slots.write(start, src, got) };
        Self::publish(&self.prod, start, got);
        got as usize
    }

    /// # Safety
    /// `dst[..n]` is writable; the first `returned` get initialised values owned by the caller.
    #[inline(always)]
    unsafe fn dequeue_raw(&self, dst: *mut T, n: usize, b: Behavior) -> usize {
        let (start, got) = self.cons_reserve(n.min(u32::MAX as usize) as u32, b);
        if got == 0 {
            return 0;
        }
        // SAFETY: [start, start+got) is reserved for us and published (prod.tail acquired).
        unsafe { self.slots.read(start, dst, got) };
        Self::publish(&self.cons, start, got);
        got as usize
    }

    /// Enqueues one value, or hands it back when the ring is full.
    #[inline]
    pub fn enqueue(&self, v: T) -> Result<(), T> {
        let v = core::mem::ManuallyDrop::new(v);
        // SAFETY: one initialised value; if it was taken we must not drop it (ManuallyDrop).
        if unsafe { self.enqueue_raw(&*v as *const T, 1, Behavior::Bulk) } == 1 {
            Ok(())
        } else {
            Err(core::mem::ManuallyDrop::into_inner(v))
        }
    }

    /// Dequeues one value.
    #[inline]
    pub fn dequeue(&self) -> Option<T> {
        let mut out = core::mem::MaybeUninit::<T>::uninit();
        // SAFETY: room for one value; initialised when 1 is returned.
        if unsafe { self.dequeue_raw(out.as_mut_ptr(), 1, Behavior::Bulk) } == 1 {
            // SAFETY: dequeue_raw wrote it.
            Some(unsafe { out.assume_init() })
        } else {
            None
        }
    }

    /// Moves as many values from the front of `src` as fit; the rest stay in `src` in order.
    /// Returns how many were moved.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&self, src: &mut Burst<T, N>) -> usize {
        // SAFETY: src's first len values are initialised; the moved prefix is forgotten.
        unsafe {
            let n = self.enqueue_raw(src.as_ptr(), src.len(), Behavior::Burst);
            src.forget_front(n);
            n
        }
    }

    /// Moves all of `src` into the ring, or nothing when they do not all fit. Returns the
    /// number moved (`src.len()` or 0).
    #[inline]
    pub fn enqueue_bulk<const N: usize>(&self, src: &mut Burst<T, N>) -> usize {
        // SAFETY: as in enqueue_burst.
        unsafe {
            let n = self.enqueue_raw(src.as_ptr(), src.len(), Behavior::Bulk);
            src.forget_front(n);
            n
        }
    }

    /// Appends up to `max` values (bounded by `dst`'s spare room) to `dst`; returns how many.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&self, dst: &mut Burst<T, N>, max: usize) -> usize {
        let len = dst.len();
        let n = max.min(dst.spare());
        // SAFETY: the spare tail has room for n values; set_len covers exactly those written.
        unsafe {
            let got = self.dequeue_raw(dst.as_mut_ptr().add(len), n, Behavior::Burst);
            dst.set_len(len + got);
            got
        }
    }

    /// Appends exactly `n` values to `dst`, or none when fewer are available or `dst` lacks
    /// room. Returns `n` or 0.
    #[inline]
    pub fn dequeue_bulk<const N: usize>(&self, dst: &mut Burst<T, N>, n: usize) -> usize {
        if n > dst.spare() {
            return 0;
        }
        let len = dst.len();
        // SAFETY: as in dequeue_burst.
        unsafe {
            let got = self.dequeue_raw(dst.as_mut_ptr().add(len), n, Behavior::Bulk);
            dst.set_len(len + got);
            got
        }
    }
}

impl<T: Copy> Ring<T> {
    /// Copies as many values of `src` (from the front) as fit into the ring; returns how many.
    #[inline]
    pub fn enqueue_slice(&self, src: &[T]) -> usize {
        // SAFETY: T: Copy, so moving out of a shared slice by bitwise copy is fine.
        unsafe { self.enqueue_raw(src.as_ptr(), src.len(), Behavior::Burst) }
    }

    /// Copies all of `src` into the ring or nothing; returns `src.len()` or 0.
    #[inline]
    pub fn enqueue_slice_bulk(&self, src: &[T]) -> usize {
        // SAFETY: as in enqueue_slice.
        unsafe { self.enqueue_raw(src.as_ptr(), src.len(), Behavior::Bulk) }
    }

    /// Fills the front of `dst` with as many values as are available; returns how many.
    #[inline]
    pub fn dequeue_slice(&self, dst: &mut [T]) -> usize {
        // SAFETY: dst is writable for its length; T: Copy has no drop to skip.
        unsafe { self.dequeue_raw(dst.as_mut_ptr(), dst.len(), Behavior::Burst) }
    }

    /// Fills all of `dst` or nothing; returns `dst.len()` or 0.
    #[inline]
    pub fn dequeue_slice_bulk(&self, dst: &mut [T]) -> usize {
        // SAFETY: as in dequeue_slice.
        unsafe { self.dequeue_raw(dst.as_mut_ptr(), dst.len(), Behavior::Bulk) }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let from = self.cons.tail.load(Ordering::Relaxed);
        let to = self.prod.tail.load(Ordering::Relaxed);
        // SAFETY: &mut self: nobody else can touch the ring; [cons.tail, prod.tail) hold
        // published values.
        unsafe { self.slots.drop_range(from, to) };
    }
}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring").field("capacity", &self.capacity()).field("len", &self.len()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn rejects_bad_capacity() {
        assert!(matches!(Ring::<u8>::new(0), Err(RingError::BadCapacity(0))));
        assert!(matches!(Ring::<u8>::new(12), Err(RingError::BadCapacity(12))));
        assert!(Ring::<u8>::new(1).is_ok());
    }

    #[test]
    fn burst_and_bulk_semantics() {
        let r = Ring::new(4).unwrap();
        assert_eq!(r.enqueue_slice(&[1u32, 2, 3]), 3);
        assert_eq!(r.enqueue_slice_bulk(&[4, 5]), 0, "bulk is all or nothing");
        assert_eq!(r.enqueue_slice(&[4, 5]), 1, "burst takes what fits");
        assert_eq!(r.len(), 4);
        let mut out = [0u32; 8];
        assert_eq!(r.dequeue_slice_bulk(&mut out[..5]), 0);
        assert_eq!(r.dequeue_slice(&mut out[..2]), 2);
        assert_eq!(&out[..2], &[1, 2]);
        assert_eq!(r.dequeue_slice(&mut out), 2);
        assert_eq!(&out[..2], &[3, 4]);
        assert!(r.is_empty());
    }

    #[test]
    fn wraps_many_times() {
        let r = Ring::new(8).unwrap();
        let mut next = 0u64;
        let mut expect = 0u64;
        for round in 0..10_000u64 {
            let k = (round % 7 + 1) as usize;
            let vals: Vec<u64> = (next..next + k as u64).collect();
            let n = r.enqueue_slice(&vals);
            next += n as u64;
            let mut out = [0u64; 8];
            let m = r.dequeue_slice(&mut out[..(round % 5 + 1) as usize]);
            for v in &out[..m] {
                assert_eq!(*v, expect);
                expect += 1;
            }
        }
    }

    #[test]
    fn owned_values_drop_exactly_once() {
        let count = Arc::new(());
        {
            let r = Ring::new(8).unwrap();
            let mut b: Burst<Arc<()>, 16> = Burst::new();
            for _ in 0..12 {
                b.push(count.clone()).unwrap();
            }
            assert_eq!(r.enqueue_burst(&mut b), 8);
            assert_eq!(b.len(), 4);
            assert_eq!(Arc::strong_count(&count), 13);
            let mut out: Burst<Arc<()>, 16> = Burst::new();
            assert_eq!(r.dequeue_burst(&mut out, 3), 3);
            drop(out);
            assert_eq!(Arc::strong_count(&count), 10);
            assert!(r.enqueue(count.clone()).is_ok());
            assert_eq!(r.enqueue_burst(&mut b), 2);
            assert!(r.enqueue(count.clone()).is_err(), "full ring hands the value back");
            assert_eq!(Arc::strong_count(&count), 11);
        }
        assert_eq!(Arc::strong_count(&count), 1);
    }

    /// Several producers and consumers; every value is seen exactly once.
    #[test]
    fn mpmc_stress_no_loss_no_duplicate() {
        const PRODUCERS: u64 = 3;
        const PER: u64 = if cfg!(miri) { 200 } else { 50_000 };
        let r = Arc::new(Ring::<u64>::new(64).unwrap());
        let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..PRODUCERS * PER).map(|_| AtomicUsize::new(0)).collect());
        let taken = Arc::new(AtomicUsize::new(0));
        let mut hs = vec![];
        for p in 0..PRODUCERS {
            let r = r.clone();
            hs.push(std::thread::spawn(move || {
                let mut i = 0;
                while i < PER {
                    let k = ((i % 13) + 1).min(PER - i);
                    let vals: Vec<u64> = (0..k).map(|j| p * PER + i + j).collect();
                    let n = r.enqueue_slice(&vals);
                    i += n as u64;
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
            }));
        }
        for _ in 0..2 {
            let (r, seen, taken) = (r.clone(), seen.clone(), taken.clone());
            hs.push(std::thread::spawn(move || {
                let mut out = [0u64; 17];
                while taken.load(Ordering::Relaxed) < (PRODUCERS * PER) as usize {
                    let n = r.dequeue_slice(&mut out);
                    for v in &out[..n] {
                        seen[*v as usize].fetch_add(1, Ordering::Relaxed);
                    }
                    taken.fetch_add(n, Ordering::Relaxed);
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        assert!(r.is_empty());
    }
}
