//! Atomics and cells used by the lock-free code, routed through one module so that the loom
//! model checker can replace them (`RUSTFLAGS="--cfg loom"`).
#![allow(unsafe_code)]

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU32;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicU32;

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

pub(crate) use std::sync::atomic::Ordering;

/// Busy-wait step number `n` of a wait loop: a pause hint, and after many of them a yield to
/// the OS, so that a waiter does not burn the time slice of a preempted peer it waits for
/// (cores shared with other work, as in containers without exclusive CPUs). Under loom, a
/// yield so the model checker explores other threads.
#[inline(always)]
pub(crate) fn spin(n: u32) {
    #[cfg(loom)]
    {
        let _ = n;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        if n < 128 {
            crate::arch::spin_hint();
        } else {
            std::thread::yield_now();
        }
    }
}

/// One ring slot: an `UnsafeCell<MaybeUninit<T>>` whose accesses loom can track. Without
/// loom it is layout-identical to `T` (`repr(transparent)` all the way down), so a run of
/// slots can be copied with one `memcpy`.
#[cfg_attr(not(loom), repr(transparent))]
pub(crate) struct Slot<T> {
    #[cfg(loom)]
    cell: loom::cell::UnsafeCell<core::mem::MaybeUninit<T>>,
    #[cfg(not(loom))]
    cell: core::cell::UnsafeCell<core::mem::MaybeUninit<T>>,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        Slot {
            #[cfg(loom)]
            cell: loom::cell::UnsafeCell::new(core::mem::MaybeUninit::uninit()),
            #[cfg(not(loom))]
            cell: core::cell::UnsafeCell::new(core::mem::MaybeUninit::uninit()),
        }
    }

    /// Moves `v` into the slot.
    ///
    /// # Safety
    /// The caller has exclusive access to the slot (it reserved it) and the slot is empty.
    #[inline(always)]
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) unsafe fn write(&self, v: T) {
        #[cfg(loom)]
        // SAFETY: exclusive access is the caller's contract.
        self.cell.with_mut(|p| unsafe { (*p).write(v) });
        #[cfg(not(loom))]
        // SAFETY: exclusive access is the caller's contract.
        unsafe {
            (*self.cell.get()).write(v);
        }
    }

    /// Moves the value out of the slot, leaving it logically empty.
    ///
    /// # Safety
    /// The caller has exclusive access to the slot and the slot holds an initialised value.
    #[inline(always)]
    pub(crate) unsafe fn read(&self) -> T {
        #[cfg(loom)]
        // SAFETY: exclusive access and initialisation are the caller's contract.
        return self.cell.with(|p| unsafe { (*p).assume_init_read() });
        #[cfg(not(loom))]
        // SAFETY: exclusive access and initialisation are the caller's contract.
        unsafe {
            (*self.cell.get()).assume_init_read()
        }
    }
}
