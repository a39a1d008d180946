//! Packet buffers ([`Mbuf`]) and the pools they come from ([`Mempool`]).
//!
//! A pool is carved from one contiguous memory region ([`MemRegion`]) mapped with memmap2:
//! 2 MiB hugepages when available (or 1 GiB when asked, or a file on a hugetlbfs mount), else
//! normal pages with a logged warning. The region is cut into power-of-two chunks (2048 bytes
//! by default), each chunk-aligned:
//!
//! ```text
//! chunk: | header 64 B | headroom (256 B default) | data ... | tailroom |
//!        ^ chunk base  ^ buffer start            ^ data_off
//! ```
//!
//! This makes the region usable as an AF_XDP UMEM as is (frame = chunk, the kernel writes at
//! `chunk + 64 + headroom`; UMEM frame headroom is the 64-byte header) and as a VFIO DMA area
//! (IOVA = offset in the region + a base): see [`MemRegion::base`], [`Mempool::chunk_offset`].
//!
//! Free chunks live in a global MPMC [`Ring`](crate::ring::Ring) plus one cache per thread, like rte_mempool's
//! per-lcore caches: a thread gets and puts in bursts against its own cache and touches the
//! shared ring only to refill or flush a cache. A thread's cache is found through a
//! thread-local slot number claimed on first use (at most [`MAX_THREAD_CACHES`] threads at
//! once; further threads use the ring directly).
//!
//! An [`Mbuf`] is a single pointer; dropping it returns the chunk to its pool. A pool whose
//! last handle is dropped while mbufs are still out keeps its memory (it is leaked, with a
//! warning) so those mbufs stay valid.

use std::path::PathBuf;

mod buffer;
mod cache;
mod pool;
mod region;
#[cfg(test)]
mod tests;

pub use buffer::Mbuf;
use cache::{thread_slot, ThreadCache};
pub(crate) use pool::Shared;
pub use pool::{Mempool, MempoolStats};
pub use region::MemRegion;

/// Size of the per-chunk header holding the mbuf metadata.
pub const MBUF_HEADER: usize = 64;
/// Default headroom in front of the data (DPDK uses 128; 256 matches XDP_PACKET_HEADROOM).
pub const DEFAULT_HEADROOM: u16 = 256;
/// Smallest headroom accepted.
pub const MIN_HEADROOM: u16 = 128;
/// Default chunk size.
pub const DEFAULT_CHUNK: u32 = 2048;
/// The data room of a default pool's mbuf: the largest frame one mbuf holds with the default
/// chunk size and headroom.
pub const DEFAULT_DATA_ROOM: usize = DEFAULT_CHUNK as usize - MBUF_HEADER - DEFAULT_HEADROOM as usize;
/// Default per-thread cache size.
pub const DEFAULT_CACHE: u32 = 256;
/// Largest per-thread cache.
pub const MAX_CACHE: u32 = 1024;
/// Threads that can hold a cache at once (like DPDK's RTE_MAX_LCORE).
pub const MAX_THREAD_CACHES: usize = 128;

/// What memory backs a pool's region.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MemBacking {
    /// 2 MiB hugepages when they can be had, else normal pages with a warning.
    #[default]
    Auto,
    /// Normal pages.
    Normal,
    /// Anonymous 2 MiB hugepages (MAP_HUGETLB); an error when none are free.
    Huge2M,
    /// Anonymous 1 GiB hugepages (MAP_HUGETLB | MAP_HUGE_1GB); an error when none are free.
    Huge1G,
    /// A file created (and unlinked) in this hugetlbfs mount, e.g. `/dev/hugepages` or a
    /// Kubernetes `medium: HugePages` emptyDir. The page size is the mount's.
    Hugetlbfs(PathBuf),
}

/// Why a pool could not be created or an mbuf could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// Every mbuf is in use (a transient data-path condition, not a failure).
    #[error("mempool exhausted: all mbufs are in use")]
    Exhausted,
    /// The configuration is invalid.
    #[error("invalid mempool configuration: {0}")]
    Config(String),
    /// The memory could not be mapped.
    #[error("cannot map {len} bytes of {backing}: {source}")]
    Map {
        /// Bytes asked for.
        len: usize,
        /// What kind of memory.
        backing: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Pool configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Name shown in statistics and logs.
    pub name: String,
    /// Number of mbufs.
    pub size: u32,
    /// Chunk size: a power of two from 1024 to 65536 (2048 default; 4096 for AF_XDP pages).
    pub chunk_size: u32,
    /// Headroom in front of the data, at least [`MIN_HEADROOM`].
    pub headroom: u16,
    /// Per-thread cache size (0 disables the caches), at most [`MAX_CACHE`].
    pub cache_size: u32,
    /// What memory backs the pool.
    pub backing: MemBacking,
}

impl MempoolConfig {
    /// `size` mbufs of the default chunk size, headroom and cache, on [`MemBacking::Auto`].
    pub fn new(name: &str, size: u32) -> Self {
        MempoolConfig {
            name: name.to_string(),
            size,
            chunk_size: DEFAULT_CHUNK,
            headroom: DEFAULT_HEADROOM,
            cache_size: DEFAULT_CACHE,
            backing: MemBacking::Auto,
        }
    }

    fn validate(&self) -> Result<(), MempoolError> {
        let bad = |m: String| Err(MempoolError::Config(format!("pool {:?}: {m}", self.name)));
        if self.size == 0 || self.size > (1 << 28) {
            return bad(format!("size {} must be between 1 and 2^28 mbufs", self.size));
        }
        if !self.chunk_size.is_power_of_two() || !(1024..=65536).contains(&self.chunk_size) {
            return bad(format!("chunk size {} must be a power of two from 1024 to 65536", self.chunk_size));
        }
        if self.headroom < MIN_HEADROOM {
            return bad(format!("headroom {} is below the minimum {MIN_HEADROOM}", self.headroom));
        }
        if MBUF_HEADER + self.headroom as usize + 64 > self.chunk_size as usize {
            return bad(format!("headroom {} leaves no data room in a {}-byte chunk", self.headroom, self.chunk_size));
        }
        if self.cache_size > MAX_CACHE {
            return bad(format!("cache size {} is above the maximum {MAX_CACHE}", self.cache_size));
        }
        Ok(())
    }
}

/// The metadata at the start of every chunk. One cache line.
#[repr(C, align(64))]
pub(crate) struct MbufHeader {
    pool: *const Shared,
    /// Bytes from the buffer start (chunk + 64) to the chunk end.
    buf_len: u32,
    data_off: u16,
    data_len: u16,
    port: u16,
    queue: u16,
    ptype: u32,
    hash: u32,
    l2_len: u8,
    l4_len: u8,
    l3_len: u16,
    timestamp: u64,
    userdata: u64,
}

const _: () = assert!(core::mem::size_of::<MbufHeader>() == MBUF_HEADER);
