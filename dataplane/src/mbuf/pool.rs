//! The pool: the shared state behind every [`Mempool`] handle (region, ring of free chunks,
//! thread caches) and the handle itself.
#![allow(unsafe_code)]

use super::{
    thread_slot, Mbuf, MbufHeader, MemRegion, MempoolConfig, MempoolError, ThreadCache, MAX_CACHE, MAX_THREAD_CACHES,
    MBUF_HEADER,
};
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::ring::Ring;
use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

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
    pub(super) id: usize,
}

// SAFETY: `caches[i].objs` is only accessed by the thread holding slot i (see `thread_slot`);
// everything else is atomics, the ring (Sync) or immutable after construction.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointers in the region are owned by the mapping.
unsafe impl Send for Shared {}

static POOL_IDS: AtomicUsize = AtomicUsize::new(1);

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
    pub(super) fn put_chunks(&self, chunks: &[usize]) {
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
