//! The DPDK backend (feature `dpdk`): EAL, `rte_mbuf`s as [`PacketBuf`](crate::PacketBuf)s,
//! mbuf pools, ethdev ports and `rte_ring`s, over the `dpdk-sys` FFI crate.
//!
//! - [`Eal`]: `rte_eal_init`, once per process ([`Eal::init`]), with [`eal_args`] adding
//!   `--no-huge -m 512` when no hugepages are reserved.
//! - [`RteMbuf`]: an owned `rte_mbuf` that frees itself on drop; processing code generic
//!   over [`PacketBuf`](crate::PacketBuf) (`L2Fwd`, the `Lcore` loop) runs on it as it is,
//!   so packets go from `rte_eth_rx_burst` to `rte_eth_tx_burst` without a copy.
//! - [`DpdkMempool`]: `rte_pktmbuf_pool_create` per NUMA socket.
//! - [`DpdkPort`]: an ethdev port (a vdev probed at run time, a PCI device allowed with
//!   `-a` at EAL init, or an existing port id) implementing [`Port`](crate::port::Port).
//! - [`RteRing`]: a safe handle on an `rte_ring` of pointers (tests and benchmarks).
//!
//! # Threads
//! `rte_eth_rx_burst`/`tx_burst` may be called from any thread, but the mempool's per-lcore
//! caches need a valid `rte_lcore_id()`. Queues call [`ensure_registered`] on each burst
//! (one thread-local load once registered): a thread that is not an EAL lcore is registered
//! with `rte_thread_register` on its first burst and unregistered when it exits.

mod eal;
mod mbuf;
mod port;
mod ring;

pub use eal::{eal_args, ensure_registered, hugepages_free, Eal};
pub use mbuf::{DpdkMempool, DpdkMempoolConfig, RteMbuf};
pub use port::{DpdkDevice, DpdkPort, DpdkPortConfig};
pub use ring::RteRing;

/// Errors of the DPDK control path (EAL, pools, rings). Port operations report
/// [`PortError`](crate::port::PortError)s.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// [`Eal::init`] was called a second time in this process.
    #[error("the DPDK EAL is already initialised in this process (it can be initialised once)")]
    AlreadyInitialised,
    /// A DPDK object was used before [`Eal::init`].
    #[error("the DPDK EAL is not initialised: call Eal::init first")]
    NotInitialised,
    /// An argument cannot be passed to C (it contains a NUL byte) or is out of range.
    #[error("invalid argument {arg:?}: {msg}")]
    InvalidArg {
        /// The argument.
        arg: String,
        /// What is wrong.
        msg: String,
    },
    /// A DPDK call failed.
    #[error("{what}: {msg} (rte_errno {errno})")]
    Call {
        /// What was being done.
        what: String,
        /// The (positive) error number.
        errno: i32,
        /// `rte_strerror(errno)`.
        msg: String,
    },
}

impl DpdkError {
    /// A failed call, with the text of `errno` (positive or negative).
    pub(crate) fn call(what: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        DpdkError::Call { what: what.into(), errno, msg: dpdk_sys::strerror(errno) }
    }
}
