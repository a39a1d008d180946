//! `dataplane`: a userspace packet-forwarding data plane to embed in a VNF.
//!
//! The layers, bottom up (see `docs/ARCHITECTURE.md`):
//! - [`mbuf`]: packet buffers carved from one mapped region (hugepages when available), with
//!   per-core caches; the region doubles as AF_XDP UMEM and VFIO DMA area.
//! - [`ring`]: bounded lock-free rings with DPDK semantics (SPSC and MPMC, burst and bulk).
//! - [`port`]: one trait for every backend (null, ring, pcap; AF_XDP, AF_PACKET, DPDK).
//! - [`lcore`]: pinned poll-mode workers running rx → process → buffered tx.
//! - [`fwd`], [`l3fwd`]: forwarding stages (l2fwd MAC rewrite, testpmd's modes, l3fwd routing)
//!   generic over [`buf::PacketBuf`]; [`txgen`]: testpmd's txonly generator.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod arch;
pub mod buf;
pub mod classify;
pub mod lpm;
pub mod wire;

pub use buf::{PacketBuf, PacketMeta};
pub mod burst;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod fwd;
pub mod l3fwd;
pub mod lcore;
pub mod mbuf;
pub mod memlock;
pub mod port;
pub mod ring;
pub mod stage;
pub mod stats;
mod sync;
pub mod txgen;

pub use burst::{Burst, DEFAULT_BURST, MAX_BURST};
pub use mbuf::{Mbuf, Mempool, MempoolConfig};
