//! `#[inline]` Rust twins of DPDK's `static inline` `rte_eth_rx_burst` and
//! `rte_eth_tx_burst`: they read the exported `rte_eth_fp_ops` table as the C inline
//! functions do and call the PMD's burst function directly, so a burst costs one indirect
//! call into the PMD instead of a call into the C shim plus that call.
//!
//! Like the C functions (built without `RTE_ETHDEV_DEBUG_RX/TX`), they do not check the
//! port or queue ids; unlike them, they always honour installed rx/tx callbacks
//! (`RTE_ETHDEV_RXTX_CALLBACKS` is on in Debian's build, and the callback arrays exist in
//! every 22.11 build). Fast-path tracepoints (`RTE_ENABLE_TRACE_FP`, off in distribution
//! builds) are not emitted. `dpdk_shim_rx_burst`/`dpdk_shim_tx_burst` remain the reference,
//! and `tests/eal.rs` checks these against them.

use crate::{rte_eth_call_rx_callbacks, rte_eth_call_tx_callbacks, rte_eth_fp_ops, rte_mbuf, RTE_MAX_ETHPORTS};
use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};

/// The `rte_eth_fp_ops` entry of `port_id`.
///
/// # Safety
/// EAL is initialised and `port_id < RTE_MAX_ETHPORTS`.
#[inline(always)]
unsafe fn fp_ops(port_id: u16) -> *const rte_eth_fp_ops {
    debug_assert!(u32::from(port_id) < RTE_MAX_ETHPORTS);
    // SAFETY: rte_eth_fp_ops is ethdev's exported array of RTE_MAX_ETHPORTS entries, and the
    // caller keeps port_id in range; only a pointer is formed here (no reference to a
    // `static mut`).
    unsafe { core::ptr::addr_of!(crate::rte_eth_fp_ops).cast::<rte_eth_fp_ops>().add(usize::from(port_id)) }
}

/// `rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts)`: receives up to `nb_pkts` mbufs
/// into `rx_pkts`, returns how many.
///
/// # Safety
/// As for `rte_eth_rx_burst`: `port_id` is a started port and `queue_id` one of its
/// configured rx queues, polled by one thread at a time; `rx_pkts` has room for `nb_pkts`
/// pointers. The received mbufs are owned by the caller.
#[inline(always)]
pub unsafe fn rx_burst(port_id: u16, queue_id: u16, rx_pkts: *mut *mut rte_mbuf, nb_pkts: u16) -> u16 {
    // SAFETY: the caller's contract; the queue data and callback arrays have an entry per
    // configured queue (ethdev sets them up at configure/start), and a started port's
    // rx_pkt_burst is the PMD's function (a dummy one for a stopped port, never NULL).
    unsafe {
        let p = &*fp_ops(port_id);
        let qd = *p.rxq.data.add(usize::from(queue_id));
        let Some(rx) = p.rx_pkt_burst else { return 0 };
        let nb_rx = rx(qd, rx_pkts, nb_pkts);
        // Callbacks are published with a release store; the C code loads relaxed because
        // of the address dependency, as here.
        let cb = AtomicPtr::<c_void>::from_ptr(p.rxq.clbk.add(usize::from(queue_id))).load(Ordering::Relaxed);
        if cb.is_null() {
            nb_rx
        } else {
            rte_eth_call_rx_callbacks(port_id, queue_id, rx_pkts, nb_rx, nb_pkts, cb)
        }
    }
}

/// `rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts)`: hands up to `nb_pkts` mbufs
/// from the front of `tx_pkts` to the PMD and returns how many it took (they are no longer
/// the caller's).
///
/// # Safety
/// As for `rte_eth_tx_burst`: `port_id` is a started port and `queue_id` one of its
/// configured tx queues, used by one thread at a time; `tx_pkts` holds `nb_pkts` valid
/// mbufs owned by the caller.
#[inline(always)]
pub unsafe fn tx_burst(port_id: u16, queue_id: u16, tx_pkts: *mut *mut rte_mbuf, nb_pkts: u16) -> u16 {
    // SAFETY: as in `rx_burst`.
    unsafe {
        let p = &*fp_ops(port_id);
        let qd = *p.txq.data.add(usize::from(queue_id));
        let mut n = nb_pkts;
        let cb = AtomicPtr::<c_void>::from_ptr(p.txq.clbk.add(usize::from(queue_id))).load(Ordering::Relaxed);
        if !cb.is_null() {
            n = rte_eth_call_tx_callbacks(port_id, queue_id, tx_pkts, n, cb);
        }
        match p.tx_pkt_burst {
            Some(tx) => tx(qd, tx_pkts, n),
            None => 0,
        }
    }
}
