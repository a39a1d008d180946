//! [`RteRing`]: a handle on a DPDK `rte_ring` of pointers.
#![allow(unsafe_code)]

use super::{DpdkError, Eal, RteMbuf};
use crate::burst::Burst;
use dpdk_sys as sys;
use std::ffi::{c_void, CString};
use std::ptr::NonNull;

/// A DPDK ring of pointers (`rte_ring_create`, or one found with [`RteRing::lookup`]).
///
/// The handle is `Send` but not `Sync`: single-producer/single-consumer rings must not be
/// used from two threads at once, so sharing goes through DPDK (as a PMD does) or through
/// separate handles the caller makes sure respect the ring's sync mode.
#[derive(Debug)]
pub struct RteRing {
    r: NonNull<sys::rte_ring>,
    owned: bool,
}

// SAFETY: the ring lives in DPDK shared memory and may be used from any thread; not Sync
// (see the type docs).
unsafe impl Send for RteRing {}

impl RteRing {
    /// Creates a ring of `count` slots (a power of two; one slot stays empty, as in DPDK)
    /// on any socket, single-producer when `sp`, single-consumer when `sc`. Freed on drop.
    ///
    /// # Errors
    /// EAL down, a bad name, or `rte_ring_create` failing (count not a power of two, the
    /// name exists, no memory).
    pub fn new(name: &str, count: u32, sp: bool, sc: bool) -> Result<Self, DpdkError> {
        Eal::require()?;
        let c = CString::new(name)
            .map_err(|_| DpdkError::InvalidArg { arg: name.to_string(), msg: "contains a NUL byte".into() })?;
        let mut flags = 0;
        if sp {
            flags |= sys::RING_F_SP_ENQ;
        }
        if sc {
            flags |= sys::RING_F_SC_DEQ;
        }
        // SAFETY: EAL is up; c is a valid C string.
        let r = unsafe { sys::rte_ring_create(c.as_ptr(), count, sys::SOCKET_ID_ANY, flags) };
        NonNull::new(r)
            .map(|r| RteRing { r, owned: true })
            .ok_or_else(|| DpdkError::call(format!("rte_ring_create({name:?}, {count})"), sys::rte_errno()))
    }

    /// A handle on the existing ring `name` (not freed on drop).
    ///
    /// # Safety
    /// The ring must outlive the handle, and the caller must respect its sync mode: with a
    /// single-producer (single-consumer) ring, nobody else may enqueue (dequeue) while this
    /// handle does.
    pub unsafe fn lookup(name: &str) -> Option<Self> {
        Eal::get()?;
        let c = CString::new(name).ok()?;
        // SAFETY: EAL is up; c is a valid C string.
        NonNull::new(unsafe { sys::rte_ring_lookup(c.as_ptr()) }).map(|r| RteRing { r, owned: false })
    }

    /// The `rte_ring` pointer.
    pub fn as_ptr(&self) -> *mut sys::rte_ring {
        self.r.as_ptr()
    }

    /// Enqueues as many of `objs` as fit (in the ring's sync mode); returns how many.
    #[inline]
    pub fn enqueue_burst(&self, objs: &[*mut c_void]) -> usize {
        // SAFETY: a live ring; objs is a valid array of objs.len() pointers, which the ring
        // only stores (never dereferences).
        unsafe {
            sys::dpdk_shim_ring_enqueue_burst(self.as_ptr(), objs.as_ptr(), objs.len() as u32, std::ptr::null_mut())
                as usize
        }
    }

    /// Dequeues up to `out.len()` pointers (in the ring's sync mode); returns how many.
    #[inline]
    pub fn dequeue_burst(&self, out: &mut [*mut c_void]) -> usize {
        // SAFETY: a live ring; out has room for out.len() pointers.
        unsafe {
            sys::dpdk_shim_ring_dequeue_burst(self.as_ptr(), out.as_mut_ptr(), out.len() as u32, std::ptr::null_mut())
                as usize
        }
    }

    /// Moves as many mbufs from the front of `pkts` into the ring as fit; returns how many
    /// (the rest stay in `pkts`, in order).
    pub fn enqueue_mbufs(&self, pkts: &mut Burst<RteMbuf>) -> usize {
        // SAFETY: the burst's values are transparent owned mbuf pointers; the ring takes the
        // first n, which the burst then forgets.
        unsafe {
            let n = sys::dpdk_shim_ring_enqueue_burst(
                self.as_ptr(),
                pkts.as_ptr().cast::<*mut c_void>(),
                pkts.len() as u32,
                std::ptr::null_mut(),
            ) as usize;
            pkts.forget_front(n);
            n
        }
    }

    /// Dequeues up to `max` mbufs into `out` (bounded by its spare room); returns how many.
    ///
    /// # Safety
    /// Everything in the ring must be an mbuf that nobody else owns (as in a net_ring
    /// port's rings).
    pub unsafe fn dequeue_mbufs(&self, out: &mut Burst<RteMbuf>, max: usize) -> usize {
        let n = max.min(out.spare());
        let len = out.len();
        // SAFETY: the spare room holds n pointers; the caller guarantees what is dequeued
        // are owned mbufs, which the burst then owns.
        unsafe {
            let got = sys::dpdk_shim_ring_dequeue_burst(
                self.as_ptr(),
                out.as_mut_ptr().add(len).cast::<*mut c_void>(),
                n as u32,
                std::ptr::null_mut(),
            ) as usize;
            out.set_len(len + got);
            got
        }
    }

    /// Entries in the ring.
    pub fn count(&self) -> u32 {
        // SAFETY: a live ring.
        unsafe { sys::dpdk_shim_ring_count(self.as_ptr()) }
    }
}

impl Drop for RteRing {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: we created the ring and this is its only owning handle.
            unsafe { sys::rte_ring_free(self.as_ptr()) }
        }
    }
}
