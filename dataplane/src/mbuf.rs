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
//! Free chunks live in a global MPMC [`Ring`] plus one cache per thread, like rte_mempool's
//! per-lcore caches: a thread gets and puts in bursts against its own cache and touches the
//! shared ring only to refill or flush a cache. A thread's cache is found through a
//! thread-local slot number claimed on first use (at most [`MAX_THREAD_CACHES`] threads at
//! once; further threads use the ring directly).
//!
//! An [`Mbuf`] is a single pointer; dropping it returns the chunk to its pool. A pool whose
//! last handle is dropped while mbufs are still out keeps its memory (it is leaked, with a
//! warning) so those mbufs stay valid.
#![allow(unsafe_code)]

use crate::buf::{PacketBuf, PacketMeta};
use crate::burst::Burst;
use crate::ring::Ring;
use crossbeam_utils::CachePadded;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Size of the per-chunk header holding the mbuf metadata.
pub const MBUF_HEADER: usize = 64;
/// Default headroom in front of the data (DPDK uses 128; 256 matches XDP_PACKET_HEADROOM).
pub const DEFAULT_HEADROOM: u16 = 256;
/// Smallest headroom accepted.
pub const MIN_HEADROOM: u16 = 128;
/// Default chunk size.
pub const DEFAULT_CHUNK: u32 = 2048;
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

/// One contiguous mapped memory region, the backing of a pool.
pub struct MemRegion {
    /// Kept raw: its pointer carries write permission for the whole region without creating a
    /// reference to the memory, which mbufs, the kernel (AF_XDP) and devices (DMA) share.
    map: memmap2::MmapRaw,
    page_size: usize,
    hugepages: bool,
    _file: Option<File>,
}

impl MemRegion {
    /// Maps at least `len` bytes (rounded up to the page size) with `backing`.
    ///
    /// # Errors
    /// [`MempoolError::Map`] when the mapping fails (for `Auto`, only when normal pages fail).
    pub fn map(len: usize, backing: &MemBacking) -> Result<Self, MempoolError> {
        const M2: usize = 2 << 20;
        const G1: usize = 1 << 30;
        let round = |len: usize, p: usize| len.div_ceil(p) * p;
        let anon = |len: usize, bits: Option<u8>| {
            let mut o = memmap2::MmapOptions::new();
            o.len(len);
            populate(&mut o);
            if bits.is_some() {
                o.huge(bits);
            }
            o.map_anon()
        };
        match backing {
            MemBacking::Normal => Self::normal(len),
            MemBacking::Huge2M => {
                let l = round(len, M2);
                let map = anon(l, Some(21)).map_err(|e| MempoolError::Map {
                    len: l,
                    backing: "2 MiB hugepages",
                    source: e,
                })?;
                Ok(MemRegion { map: map.into(), page_size: M2, hugepages: true, _file: None })
            }
            MemBacking::Huge1G => {
                let l = round(len, G1);
                let map = anon(l, Some(30)).map_err(|e| MempoolError::Map {
                    len: l,
                    backing: "1 GiB hugepages",
                    source: e,
                })?;
                Ok(MemRegion { map: map.into(), page_size: G1, hugepages: true, _file: None })
            }
            // Miri models only plain anonymous private mappings.
            MemBacking::Auto if cfg!(miri) => Self::normal(len),
            MemBacking::Auto => {
                let l = round(len, M2);
                match anon(l, Some(21)) {
                    Ok(map) => Ok(MemRegion { map: map.into(), page_size: M2, hugepages: true, _file: None }),
                    Err(e) => {
                        log::warn!(
                            "no 2 MiB hugepages for {l} bytes ({e}); using normal pages (reserve some with \
                             `echo N > /proc/sys/vm/nr_hugepages` for better TLB behaviour)"
                        );
                        Self::normal(len)
                    }
                }
            }
            MemBacking::Hugetlbfs(dir) => {
                let page = hugetlbfs_page_size(dir).unwrap_or(M2);
                let l = round(len, page);
                let path = dir.join(format!(
                    "dataplane-{}-{}",
                    std::process::id(),
                    REGION_SEQ.fetch_add(1, Ordering::Relaxed)
                ));
                let err = |e| MempoolError::Map { len: l, backing: "hugetlbfs file", source: e };
                let file =
                    std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(err)?;
                let _ = std::fs::remove_file(&path);
                file.set_len(l as u64).map_err(err)?;
                // SAFETY: the file was just created and unlinked: no other process can map or
                // truncate it, so the mapping stays valid for the region's lifetime.
                let map = unsafe { memmap2::MmapOptions::new().len(l).populate().map_mut(&file) }.map_err(err)?;
                Ok(MemRegion { map: map.into(), page_size: page, hugepages: true, _file: Some(file) })
            }
        }
    }

    fn normal(len: usize) -> Result<Self, MempoolError> {
        let page = page_size();
        let l = len.div_ceil(page) * page;
        let mut o = memmap2::MmapOptions::new();
        o.len(l);
        populate(&mut o);
        let map = o.map_anon().map_err(|e| MempoolError::Map { len: l, backing: "normal pages", source: e })?;
        Ok(MemRegion { map: map.into(), page_size: page, hugepages: false, _file: None })
    }

    /// Base address (page aligned). Register it for DMA (AF_XDP UMEM, VFIO DMA map).
    pub fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Length in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True for an empty region (never, for a pool's).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Page size backing the region.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// True when backed by hugepages.
    pub fn is_hugepages(&self) -> bool {
        self.hugepages
    }
}

impl fmt::Debug for MemRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemRegion")
            .field("base", &self.base())
            .field("len", &self.len())
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// Asks for the mapping to be populated up front (MAP_POPULATE), so the data path takes no
/// page faults; not under Miri, which models only plain anonymous mappings.
fn populate(o: &mut memmap2::MmapOptions) {
    if !cfg!(miri) {
        o.populate();
    }
}

static REGION_SEQ: AtomicUsize = AtomicUsize::new(0);

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// The page size of a hugetlbfs mount, from /proc/mounts (`pagesize=2M` option).
fn hugetlbfs_page_size(dir: &std::path::Path) -> Option<usize> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let dir = dir.canonicalize().ok()?;
    mounts.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let (_, mnt, fstype, opts) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if fstype != "hugetlbfs" || std::path::Path::new(mnt) != dir {
            return None;
        }
        opts.split(',').find_map(|o| {
            let v = o.strip_prefix("pagesize=")?;
            let (num, mult) = match v.chars().last()? {
                'K' => (&v[..v.len() - 1], 1usize << 10),
                'M' => (&v[..v.len() - 1], 1 << 20),
                'G' => (&v[..v.len() - 1], 1 << 30),
                _ => (v, 1),
            };
            num.parse::<usize>().ok().map(|n| n * mult)
        })
    })
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

/// One thread's cache of free chunks. Only the owning thread touches `objs`; the atomics are
/// single-writer and read by statistics and by the pool's final drop.
struct ThreadCache {
    objs: UnsafeCell<Vec<usize>>,
    len: AtomicU32,
    /// Monotonic count of chunks handed out through this slot (owner-written).
    gets: AtomicU64,
    /// Monotonic count of chunks returned through this slot (owner-written, release-stored as
    /// the very last access of every put, so a reader that sees it sees a finished put).
    puts: AtomicU64,
}

pub(crate) struct Shared {
    region: MemRegion,
    ring: Ring<usize>,
    caches: Box<[CachePadded<ThreadCache>]>,
    slow_gets: AtomicU64,
    slow_puts: AtomicU64,
    cfg: MempoolConfig,
    chunk_shift: u32,
    cache_size: u32,
    flush_threshold: u32,
    id: usize,
}

// SAFETY: `caches[i].objs` is only accessed by the thread holding slot i (see `thread_slot`);
// everything else is atomics, the ring (Sync) or immutable after construction.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointers in the region are owned by the mapping.
unsafe impl Send for Shared {}

static POOL_IDS: AtomicUsize = AtomicUsize::new(1);

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
fn thread_slot() -> usize {
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

impl Shared {
    /// The header pointer of the chunk at address `chunk`, derived from the region's base
    /// pointer so that it carries the region's provenance (chunks travel through the rings
    /// and the thread caches as plain addresses).
    #[inline(always)]
    fn chunk_ptr(&self, chunk: usize) -> *mut MbufHeader {
        let base = self.region.base();
        base.wrapping_add(chunk.wrapping_sub(base as usize)).cast()
    }

    /// Resets the per-packet fields of a chunk's header for a fresh mbuf.
    #[inline(always)]
    fn reset(&self, chunk: usize) -> NonNull<MbufHeader> {
        let h = self.chunk_ptr(chunk);
        // SAFETY: chunk is a chunk of this pool that the caller now owns exclusively.
        unsafe {
            (*h).data_off = self.cfg.headroom;
            (*h).data_len = 0;
            (*h).port = u16::MAX;
            (*h).queue = 0;
            (*h).ptype = 0;
            (*h).hash = 0;
            (*h).l2_len = 0;
            (*h).l4_len = 0;
            (*h).l3_len = 0;
            (*h).timestamp = 0;
            NonNull::new_unchecked(h)
        }
    }

    /// Takes `n` chunk addresses into `out`, all or nothing.
    #[inline(always)]
    fn get_chunks(&self, out: &mut [usize]) -> Result<(), MempoolError> {
        let n = out.len();
        let slot = thread_slot();
        if slot >= MAX_THREAD_CACHES || self.cache_size == 0 || n > self.cache_size as usize {
            if self.ring.dequeue_slice_bulk(out) != n {
                return Err(MempoolError::Exhausted);
            }
            self.slow_gets.fetch_add(n as u64, Ordering::Relaxed);
            return Ok(());
        }
        let c = &self.caches[slot];
        // SAFETY: slot is owned by this thread (thread_slot), so nobody else touches objs.
        let objs = unsafe { &mut *c.objs.get() };
        let mut len = c.len.load(Ordering::Relaxed) as usize;
        if len < n {
            if objs.is_empty() {
                objs.resize(self.flush_threshold as usize + MAX_CACHE as usize, 0);
            }
            // Refill up to cache_size + n, like rte_mempool; fall back to exactly what is
            // missing when the ring runs low.
            let want = self.cache_size as usize + n - len;
            let got = self.ring.dequeue_slice(&mut objs[len..len + want]);
            len += got;
            c.len.store(len as u32, Ordering::Relaxed);
            if len < n {
                return Err(MempoolError::Exhausted);
            }
        }
        let start = len - n;
        out.copy_from_slice(&objs[start..len]);
        c.len.store(start as u32, Ordering::Relaxed);
        c.gets.store(c.gets.load(Ordering::Relaxed) + n as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Returns chunk addresses to the pool.
    #[inline(always)]
    fn put_chunks(&self, chunks: &[usize]) {
        let n = chunks.len();
        let slot = thread_slot();
        if slot >= MAX_THREAD_CACHES || self.cache_size == 0 || n > MAX_CACHE as usize {
            let k = self.ring.enqueue_slice(chunks);
            debug_assert_eq!(k, n, "the global ring holds every chunk");
            self.slow_puts.fetch_add(n as u64, Ordering::Release);
            return;
        }
        let c = &self.caches[slot];
        // SAFETY: slot is owned by this thread.
        let objs = unsafe { &mut *c.objs.get() };
        if objs.is_empty() {
            objs.resize(self.flush_threshold as usize + MAX_CACHE as usize, 0);
        }
        let mut len = c.len.load(Ordering::Relaxed) as usize;
        objs[len..len + n].copy_from_slice(chunks);
        len += n;
        if len >= self.flush_threshold as usize {
            let keep = self.cache_size as usize;
            let k = self.ring.enqueue_slice(&objs[keep..len]);
            debug_assert_eq!(k, len - keep, "the global ring holds every chunk");
            len = keep;
        }
        c.len.store(len as u32, Ordering::Relaxed);
        // Last access of the put: see `ThreadCache::puts`.
        c.puts.store(c.puts.load(Ordering::Relaxed) + n as u64, Ordering::Release);
    }

    fn outstanding(&self) -> i64 {
        let mut gets = self.slow_gets.load(Ordering::Acquire);
        let mut puts = self.slow_puts.load(Ordering::Acquire);
        for c in self.caches.iter() {
            gets += c.gets.load(Ordering::Acquire);
            puts += c.puts.load(Ordering::Acquire);
        }
        gets as i64 - puts as i64
    }
}

/// A pool of packet buffers. Cheap to clone (a shared handle); `Send + Sync`.
///
/// # Examples
/// ```
/// use dataplane::mbuf::{Mempool, MempoolConfig, MemBacking};
/// use dataplane::PacketBuf;
/// let mut cfg = MempoolConfig::new("doc", 64);
/// cfg.backing = MemBacking::Normal;
/// let pool = Mempool::new(cfg).unwrap();
/// let mut m = pool.alloc().unwrap();
/// m.append(60).unwrap().fill(0xab);
/// assert_eq!(m.len(), 60);
/// drop(m);
/// assert_eq!(pool.in_use(), 0);
/// ```
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolHandle>,
}

struct PoolHandle {
    /// From `Box::into_raw`: every mbuf header points here, so the allocation is never moved
    /// or re-borrowed uniquely while the pool lives.
    shared: NonNull<Shared>,
}

// SAFETY: Shared is Sync + Send; the handle only hands out shared references.
unsafe impl Send for PoolHandle {}
// SAFETY: as above.
unsafe impl Sync for PoolHandle {}

impl PoolHandle {
    fn get(&self) -> &Shared {
        // SAFETY: the pointer came from Box::into_raw and is freed only in Drop.
        unsafe { self.shared.as_ref() }
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        let out = self.get().outstanding();
        if out != 0 {
            log::warn!(
                "mempool {:?} dropped with {out} mbufs still in use: leaking its {} bytes so they stay valid",
                self.get().cfg.name,
                self.get().region.len()
            );
            return;
        }
        // SAFETY: every get has a matching finished put (outstanding() == 0 with acquire loads
        // of the release-stored put counters) and no handle remains to get more, so no mbuf of
        // this pool exists and no thread is inside a put: nobody can reach `Shared` again.
        drop(unsafe { Box::from_raw(self.shared.as_ptr()) });
    }
}

impl Mempool {
    /// Creates a pool.
    ///
    /// # Errors
    /// [`MempoolError::Config`] for an invalid configuration, [`MempoolError::Map`] when the
    /// memory cannot be mapped.
    pub fn new(cfg: MempoolConfig) -> Result<Self, MempoolError> {
        cfg.validate()?;
        let chunk = cfg.chunk_size as usize;
        let region = MemRegion::map(cfg.size as usize * chunk, &cfg.backing)?;
        let ring =
            Ring::new((cfg.size as usize).next_power_of_two()).map_err(|e| MempoolError::Config(e.to_string()))?;
        let cache_size = cfg.cache_size.min(cfg.size);
        let raw = Box::into_raw(Box::new(Shared {
            ring,
            caches: (0..MAX_THREAD_CACHES)
                .map(|_| {
                    CachePadded::new(ThreadCache {
                        objs: UnsafeCell::new(Vec::new()),
                        len: AtomicU32::new(0),
                        gets: AtomicU64::new(0),
                        puts: AtomicU64::new(0),
                    })
                })
                .collect(),
            slow_gets: AtomicU64::new(0),
            slow_puts: AtomicU64::new(0),
            chunk_shift: cfg.chunk_size.trailing_zeros(),
            cache_size,
            flush_threshold: cache_size + cache_size / 2 + 1,
            id: POOL_IDS.fetch_add(1, Ordering::Relaxed),
            region,
            cfg,
        }));
        // SAFETY: just allocated; only shared references are made from here on.
        let shared: &Shared = unsafe { &*raw };
        let base = shared.region.base() as usize;
        let sp: *const Shared = raw;
        let mut batch = [0usize; 64];
        let mut i = 0;
        while i < shared.cfg.size as usize {
            let k = (shared.cfg.size as usize - i).min(64);
            for (j, b) in batch[..k].iter_mut().enumerate() {
                let c = base + (i + j) * chunk;
                // SAFETY: c is a chunk-aligned address inside the freshly mapped region, which
                // is at least size * chunk bytes long and not yet shared with anyone.
                unsafe {
                    shared.chunk_ptr(c).write(MbufHeader {
                        pool: sp,
                        buf_len: (chunk - MBUF_HEADER) as u32,
                        data_off: shared.cfg.headroom,
                        data_len: 0,
                        port: u16::MAX,
                        queue: 0,
                        ptype: 0,
                        hash: 0,
                        l2_len: 0,
                        l4_len: 0,
                        l3_len: 0,
                        timestamp: 0,
                        userdata: 0,
                    })
                };
                *b = c;
            }
            let n = shared.ring.enqueue_slice(&batch[..k]);
            debug_assert_eq!(n, k);
            i += k;
        }
        if !shared.region.is_hugepages() {
            log::debug!("mempool {:?}: {} mbufs on normal pages", shared.cfg.name, shared.cfg.size);
        }
        // SAFETY: Box::into_raw never returns null.
        Ok(Mempool { inner: Arc::new(PoolHandle { shared: unsafe { NonNull::new_unchecked(raw) } }) })
    }

    #[inline(always)]
    fn shared(&self) -> &Shared {
        self.inner.get()
    }

    /// Takes one mbuf (empty, default headroom).
    ///
    /// # Errors
    /// [`MempoolError::Exhausted`] when every mbuf is in use.
    #[inline]
    pub fn alloc(&self) -> Result<Mbuf, MempoolError> {
        let mut c = [0usize; 1];
        self.shared().get_chunks(&mut c)?;
        Ok(Mbuf { hdr: self.shared().reset(c[0]) })
    }

    /// Appends `n` fresh mbufs to `out`: all of them, or none (like
    /// `rte_pktmbuf_alloc_bulk`).
    ///
    /// # Errors
    /// [`MempoolError::Exhausted`] when fewer than `n` are free; `Config` when `out` has no
    /// room for `n`.
    #[inline]
    pub fn alloc_bulk<const N: usize>(&self, out: &mut Burst<Mbuf, N>, n: usize) -> Result<(), MempoolError> {
        if n > out.spare() {
            return Err(MempoolError::Config(format!("alloc_bulk of {n} into a burst with room for {}", out.spare())));
        }
        // Batches of 64: a small stack array (a 512-entry one would cost a 4 KiB memset per call).
        let mut chunks = [0usize; 64];
        let mut done = 0;
        while done < n {
            let k = (n - done).min(chunks.len());
            if let Err(e) = self.shared().get_chunks(&mut chunks[..k]) {
                // Give back what this call took so far: all or nothing.
                let len = out.len();
                out.truncate(len - done);
                return Err(e);
            }
            for &c in &chunks[..k] {
                let m = Mbuf { hdr: self.shared().reset(c) };
                // Room was checked above.
                let _ = out.push(m);
            }
            done += k;
        }
        Ok(())
    }

    /// Bytes of frame a freshly allocated mbuf holds: the chunk less the mbuf header and the
    /// headroom (what [`Mbuf::data_room`] says of each new mbuf).
    pub fn data_room(&self) -> usize {
        let c = &self.shared().cfg;
        c.chunk_size as usize - MBUF_HEADER - c.headroom as usize
    }

    /// Number of mbufs.
    pub fn size(&self) -> usize {
        self.shared().cfg.size as usize
    }

    /// Mbufs currently handed out (exact when no get or put is running).
    pub fn in_use(&self) -> usize {
        self.shared().outstanding().max(0) as usize
    }

    /// Mbufs free: in the global ring plus all thread caches.
    pub fn available(&self) -> usize {
        let s = self.shared();
        s.ring.len() + s.caches.iter().map(|c| c.len.load(Ordering::Relaxed) as usize).sum::<usize>()
    }

    /// Statistics snapshot.
    pub fn stats(&self) -> MempoolStats {
        let s = self.shared();
        MempoolStats {
            name: s.cfg.name.clone(),
            size: self.size(),
            in_use: self.in_use(),
            in_ring: s.ring.len(),
            caches: s
                .caches
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let l = c.len.load(Ordering::Relaxed) as usize;
                    (l > 0).then_some((i, l))
                })
                .collect(),
        }
    }

    /// The configuration the pool was made with.
    pub fn config(&self) -> &MempoolConfig {
        &self.shared().cfg
    }

    /// The memory region (base, length, page size) for DMA registration.
    pub fn region(&self) -> &MemRegion {
        &self.shared().region
    }

    /// A unique id of this pool within the process.
    pub fn id(&self) -> usize {
        self.shared().id
    }

    /// True when `m` belongs to this pool.
    pub fn owns(&self, m: &Mbuf) -> bool {
        // SAFETY: m is a live mbuf, its header is valid.
        core::ptr::eq(unsafe { (*m.hdr.as_ptr()).pool }, self.shared())
    }

    /// Offset of `m`'s chunk in the region (the AF_XDP UMEM frame address of the chunk).
    pub fn chunk_offset(&self, m: &Mbuf) -> Option<u64> {
        self.owns(m).then(|| (m.hdr.as_ptr() as usize - self.region().base() as usize) as u64)
    }

    /// Offset in the region of `m`'s first data byte (an AF_XDP tx descriptor address).
    pub fn data_offset(&self, m: &Mbuf) -> Option<u64> {
        self.owns(m).then(|| (m.data().as_ptr() as usize - self.region().base() as usize) as u64)
    }

    /// Turns an address within the region (an AF_XDP descriptor: chunk offset plus data
    /// offset) back into an mbuf whose data starts there and is `len` bytes long.
    ///
    /// Returns `None` when the address or length does not fit a chunk's data area.
    ///
    /// # Safety
    /// The chunk must be owned by the caller — it was taken from this pool (for example
    /// handed to the kernel as an AF_XDP fill or tx descriptor through
    /// [`Mbuf::into_raw_chunk`]) and no other `Mbuf` refers to it.
    pub unsafe fn mbuf_from_offset(&self, addr: u64, len: u32) -> Option<Mbuf> {
        let s = self.shared();
        let chunk_size = s.cfg.chunk_size as u64;
        let chunk = addr & !(chunk_size - 1);
        if chunk >= s.region.len() as u64 || (chunk >> s.chunk_shift) >= s.cfg.size as u64 {
            return None;
        }
        let off = addr - chunk;
        if off < MBUF_HEADER as u64 || off + len as u64 > chunk_size {
            return None;
        }
        let h = s.chunk_ptr(s.region.base() as usize + chunk as usize);
        // SAFETY: h is a chunk header of this pool (bounds checked above); the caller owns it.
        unsafe {
            (*h).data_off = (off - MBUF_HEADER as u64) as u16;
            (*h).data_len = len as u16;
            Some(Mbuf { hdr: NonNull::new_unchecked(h) })
        }
    }
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool").field("name", &self.shared().cfg.name).field("size", &self.size()).finish()
    }
}

/// A statistics snapshot of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolStats {
    /// Pool name.
    pub name: String,
    /// Total mbufs.
    pub size: usize,
    /// Handed out.
    pub in_use: usize,
    /// Free in the global ring.
    pub in_ring: usize,
    /// Free in thread caches: (cache slot, count) for each non-empty cache.
    pub caches: Vec<(usize, usize)>,
}

/// A packet buffer from a [`Mempool`]. One pointer wide; returns to its pool on drop.
pub struct Mbuf {
    hdr: NonNull<MbufHeader>,
}

// SAFETY: an Mbuf exclusively owns its chunk; its pool (`Shared`) is Sync.
unsafe impl Send for Mbuf {}
// SAFETY: &Mbuf only gives shared reads of the chunk.
unsafe impl Sync for Mbuf {}

impl Mbuf {
    #[inline(always)]
    fn h(&self) -> &MbufHeader {
        // SAFETY: the header is valid and owned by this mbuf for its whole life.
        unsafe { self.hdr.as_ref() }
    }

    #[inline(always)]
    fn hm(&mut self) -> &mut MbufHeader {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { self.hdr.as_mut() }
    }

    #[inline(always)]
    fn buf_ptr(&self) -> *mut u8 {
        // SAFETY: the buffer starts right after the 64-byte header, inside the chunk.
        unsafe { (self.hdr.as_ptr() as *mut u8).add(MBUF_HEADER) }
    }

    /// Sets the packet length to `len` (data offset unchanged); `false` when it does not fit.
    #[inline(always)]
    pub fn set_len(&mut self, len: usize) -> bool {
        let h = self.h();
        if h.data_off as usize + len > h.buf_len as usize {
            return false;
        }
        self.hm().data_len = len as u16;
        true
    }

    /// Room for data in this mbuf from the default headroom on.
    pub fn data_room(&self) -> usize {
        self.h().buf_len as usize - self.h().data_off as usize
    }

    /// The pool this mbuf came from, as an opaque id (see [`Mempool::id`]).
    pub fn pool_id(&self) -> usize {
        // SAFETY: the pool outlives its mbufs (see the module docs).
        unsafe { (*self.h().pool).id }
    }

    /// The receive timestamp (timer cycles).
    pub fn timestamp(&self) -> u64 {
        self.h().timestamp
    }

    /// Sets the receive timestamp.
    pub fn set_timestamp(&mut self, t: u64) {
        self.hm().timestamp = t;
    }

    /// Input queue.
    pub fn queue(&self) -> u16 {
        self.h().queue
    }

    /// Gives up ownership without returning the chunk to the pool; returns the chunk's header
    /// address. Used to hand the chunk to the kernel (AF_XDP fill/tx rings).
    pub fn into_raw_chunk(self) -> usize {
        let p = self.hdr.as_ptr() as usize;
        core::mem::forget(self);
        p
    }

    /// Copies `src` into a fresh mbuf from `pool`.
    ///
    /// # Errors
    /// `Exhausted` when the pool is empty, `Config` when `src` is larger than the data room.
    pub fn from_slice(pool: &Mempool, src: &[u8]) -> Result<Mbuf, MempoolError> {
        let mut m = pool.alloc()?;
        match m.append(src.len()) {
            Some(d) => d.copy_from_slice(src),
            None => {
                return Err(MempoolError::Config(format!(
                    "{} bytes exceed the mbuf data room {}",
                    src.len(),
                    m.data_room()
                )))
            }
        }
        Ok(m)
    }

    /// Returns a burst of mbufs to their pools, grouping consecutive mbufs of the same pool
    /// into one bulk put (the fast way to free a tx burst).
    #[inline]
    pub fn free_bulk<const N: usize>(burst: &mut Burst<Mbuf, N>) {
        let mut chunks = [0usize; 64];
        let mut k = 0;
        let mut pool: *const Shared = core::ptr::null();
        let len = burst.len();
        // Emptied first: should anything below panic, the mbufs not yet returned leak
        // instead of being dropped twice by the burst.
        // SAFETY: the len values are moved out one by one below, each exactly once.
        unsafe { burst.set_len(0) };
        for i in 0..len {
            // SAFETY: i < len, the old length: the slot still holds its value, moved out here.
            let m = unsafe { burst.as_ptr().add(i).read() };
            let p = m.h().pool;
            if (p != pool && k > 0) || k == chunks.len() {
                // SAFETY: `pool` is the pool of the k chunks gathered so far; it is alive
                // while its mbufs are.
                unsafe { (*pool).put_chunks(&chunks[..k]) };
                k = 0;
            }
            pool = p;
            chunks[k] = m.into_raw_chunk();
            k += 1;
        }
        if k > 0 {
            // SAFETY: as above.
            unsafe { (*pool).put_chunks(&chunks[..k]) };
        }
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        let pool = self.h().pool;
        // SAFETY: the pool outlives its mbufs; the chunk is returned exactly once.
        unsafe { (*pool).put_chunks(&[self.hdr.as_ptr() as usize]) };
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("port", &self.port())
            .field("headroom", &self.headroom())
            .finish()
    }
}

impl PacketBuf for Mbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let h = self.h();
        // SAFETY: data_off + data_len <= buf_len is kept by every setter; the chunk is ours.
        unsafe { core::slice::from_raw_parts(self.buf_ptr().add(h.data_off as usize), h.data_len as usize) }
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = (self.h().data_off as usize, self.h().data_len as usize);
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(self.buf_ptr().add(off), len) }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.h().data_len as usize
    }

    fn headroom(&self) -> usize {
        self.h().data_off as usize
    }

    fn tailroom(&self) -> usize {
        let h = self.h();
        h.buf_len as usize - h.data_off as usize - h.data_len as usize
    }

    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.h().data_off as usize {
            return None;
        }
        let h = self.hm();
        h.data_off -= n as u16;
        h.data_len += n as u16;
        Some(&mut self.data_mut()[..n])
    }

    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        let h = self.hm();
        h.data_off += n as u16;
        h.data_len -= n as u16;
        true
    }

    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old = self.len();
        self.hm().data_len += n as u16;
        Some(&mut self.data_mut()[old..])
    }

    fn trim(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.hm().data_len -= n as u16;
        true
    }

    fn meta(&self) -> PacketMeta {
        let h = self.h();
        PacketMeta {
            port: h.port,
            queue: h.queue,
            ptype: h.ptype,
            hash: h.hash,
            l2_len: h.l2_len,
            l3_len: h.l3_len,
            l4_len: h.l4_len,
            timestamp: h.timestamp,
        }
    }

    fn set_meta(&mut self, m: PacketMeta) {
        let h = self.hm();
        h.port = m.port;
        h.queue = m.queue;
        h.ptype = m.ptype;
        h.hash = m.hash;
        h.l2_len = m.l2_len;
        h.l3_len = m.l3_len;
        h.l4_len = m.l4_len;
        h.timestamp = m.timestamp;
    }

    #[inline(always)]
    fn ptype(&self) -> u32 {
        self.h().ptype
    }

    #[inline(always)]
    fn l2_len(&self) -> u8 {
        self.h().l2_len
    }

    #[inline(always)]
    fn set_class(&mut self, ptype: u32, l2_len: u8, l3_len: u16, l4_len: u8) {
        let h = self.hm();
        h.ptype = ptype;
        h.l2_len = l2_len;
        h.l3_len = l3_len;
        h.l4_len = l4_len;
    }

    #[inline(always)]
    fn port(&self) -> u16 {
        self.h().port
    }

    #[inline(always)]
    fn set_port(&mut self, port: u16) {
        self.hm().port = port;
    }

    #[inline(always)]
    fn hash(&self) -> u32 {
        self.h().hash
    }

    #[inline(always)]
    fn set_hash(&mut self, hash: u32) {
        self.hm().hash = hash;
    }

    #[inline(always)]
    fn prefetch(&self) {
        let h = self.h();
        crate::arch::prefetch(self.buf_ptr().wrapping_add(h.data_off as usize));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: u32) -> Mempool {
        let mut c = MempoolConfig::new("t", n);
        c.backing = MemBacking::Normal;
        c.cache_size = 8;
        Mempool::new(c).unwrap()
    }

    #[test]
    fn alloc_until_exhausted_then_recover() {
        let p = pool(40);
        let mut held = vec![];
        loop {
            match p.alloc() {
                Ok(m) => held.push(m),
                Err(MempoolError::Exhausted) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(held.len(), 40);
        assert_eq!(p.in_use(), 40);
        held.clear();
        assert_eq!(p.in_use(), 0);
        assert_eq!(p.available(), 40);
    }

    #[test]
    fn alloc_bulk_all_or_nothing() {
        let p = pool(20);
        let mut b: Burst<Mbuf, 32> = Burst::new();
        p.alloc_bulk(&mut b, 16).unwrap();
        assert!(matches!(p.alloc_bulk(&mut b, 8), Err(MempoolError::Exhausted)));
        assert_eq!(b.len(), 16, "a failed bulk alloc leaves nothing behind");
        assert_eq!(p.in_use(), 16);
        Mbuf::free_bulk(&mut b);
        assert!(b.is_empty());
        assert_eq!(p.in_use(), 0);
        assert_eq!(p.available(), 20);
    }

    #[test]
    fn headroom_and_buffer_ops() {
        let p = pool(4);
        let mut m = p.alloc().unwrap();
        assert_eq!(m.headroom(), DEFAULT_HEADROOM as usize);
        assert_eq!(m.len(), 0);
        assert_eq!(m.tailroom(), 2048 - 64 - 256);
        m.append(100).unwrap().copy_from_slice(&[7; 100]);
        m.prepend(14).unwrap().copy_from_slice(&[1; 14]);
        assert_eq!(m.len(), 114);
        assert_eq!(m.data()[13], 1);
        assert_eq!(m.data()[14], 7);
        assert!(m.adj(14));
        assert!(m.trim(50));
        assert_eq!(m.len(), 50);
        assert!(!m.adj(51));
        assert!(m.prepend(4096).is_none());
        assert!(m.append(4096).is_none());
        assert!(!m.set_len(5000));
        let mut meta = m.meta();
        meta.port = 3;
        meta.hash = 0xdead;
        m.set_meta(meta);
        assert_eq!((m.port(), m.hash()), (3, 0xdead));
    }

    #[test]
    fn fresh_mbuf_has_reset_metadata() {
        let p = pool(1);
        let mut m = p.alloc().unwrap();
        m.set_port(9);
        m.append(10);
        drop(m);
        let m = p.alloc().unwrap();
        assert_eq!(m.len(), 0);
        assert_eq!(m.port(), u16::MAX);
        assert_eq!(m.headroom(), DEFAULT_HEADROOM as usize);
    }

    #[test]
    fn chunk_offsets_round_trip() {
        let p = pool(8);
        let mut m = p.alloc().unwrap();
        m.append(60).unwrap()[0] = 0x42;
        let off = p.chunk_offset(&m).unwrap();
        assert_eq!(off % 2048, 0);
        let data = p.data_offset(&m).unwrap();
        assert_eq!(data, off + 64 + 256);
        let raw = m.into_raw_chunk();
        assert_eq!(raw - p.region().base() as usize, off as usize);
        // SAFETY: we own the chunk (into_raw_chunk above).
        let m2 = unsafe { p.mbuf_from_offset(data, 60) }.unwrap();
        assert_eq!(m2.data()[0], 0x42);
        assert_eq!(m2.len(), 60);
        // Out of range addresses are refused.
        // SAFETY: these return None without touching memory.
        assert!(unsafe { p.mbuf_from_offset(p.region().len() as u64 + 64, 10) }.is_none());
        // SAFETY: refused before touching memory.
        assert!(unsafe { p.mbuf_from_offset(off + 8, 10) }.is_none());
        // SAFETY: refused before touching memory.
        assert!(unsafe { p.mbuf_from_offset(off + 2000, 100) }.is_none());
    }

    #[test]
    fn bad_configs_are_errors() {
        for f in [
            |c: &mut MempoolConfig| c.size = 0,
            |c: &mut MempoolConfig| c.chunk_size = 3000,
            |c: &mut MempoolConfig| c.chunk_size = 512,
            |c: &mut MempoolConfig| c.headroom = 64,
            |c: &mut MempoolConfig| c.cache_size = 5000,
            |c: &mut MempoolConfig| {
                c.chunk_size = 1024;
                c.headroom = 1000
            },
        ] {
            let mut c = MempoolConfig::new("bad", 8);
            f(&mut c);
            assert!(matches!(Mempool::new(c), Err(MempoolError::Config(_))));
        }
    }

    #[test]
    fn cross_thread_free_and_stats() {
        let p = pool(256);
        let mut b: Burst<Mbuf, 64> = Burst::new();
        p.alloc_bulk(&mut b, 64).unwrap();
        let h = std::thread::spawn(move || {
            let mut b = b;
            Mbuf::free_bulk(&mut b);
        });
        h.join().unwrap();
        assert_eq!(p.in_use(), 0);
        let st = p.stats();
        assert_eq!(st.in_ring + st.caches.iter().map(|c| c.1).sum::<usize>(), 256);
    }

    #[test]
    fn pool_dropped_with_mbufs_out_keeps_them_valid() {
        let p = pool(4);
        let mut m = p.alloc().unwrap();
        drop(p);
        m.append(10).unwrap().fill(1);
        assert_eq!(m.data(), &[1; 10]);
        drop(m);
    }

    #[test]
    fn many_threads_no_loss() {
        let p = pool(1024);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut b: Burst<Mbuf, 64> = Burst::new();
                    for i in 0..if cfg!(miri) { 20 } else { 20_000 } {
                        let n = i % 64 + 1;
                        if p.alloc_bulk(&mut b, n).is_ok() {
                            for m in b.iter_mut() {
                                m.append(1).unwrap()[0] = 1;
                            }
                            Mbuf::free_bulk(&mut b);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(p.in_use(), 0);
        assert_eq!(p.available(), 1024);
    }
}
