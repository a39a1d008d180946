//! [`RteMbuf`] (an owned `rte_mbuf`) and [`DpdkMempool`] (`rte_pktmbuf_pool_create`).
#![allow(unsafe_code)]

use super::{ensure_registered, DpdkError, Eal};
use crate::buf::{PacketBuf, PacketMeta};
use crate::burst::Burst;
use dpdk_sys::{mbuf as f, rte_mbuf, rte_mempool};
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// An owned DPDK packet buffer: one `rte_mbuf` pointer, freed with `rte_pktmbuf_free` on
/// drop (a whole burst with [`RteMbuf::free_bulk`]).
///
/// `#[repr(transparent)]` over the pointer, so a `Burst<RteMbuf>` is laid out as the
/// `struct rte_mbuf *[]` that `rte_eth_rx_burst` fills and `rte_eth_tx_burst` reads: the
/// ports hand bursts to DPDK without converting or copying them.
///
/// The [`PacketBuf`] view is the first segment (as `rte_pktmbuf_mtod`/`data_len`); DPDK
/// PMDs deliver single-segment packets unless scatter rx is enabled, which
/// [`DpdkPort`](super::DpdkPort) does not do.
#[repr(transparent)]
#[derive(Debug)]
pub struct RteMbuf(NonNull<rte_mbuf>);

// SAFETY: an RteMbuf is the unique owner of its mbuf (refcount 1 from the pool or the PMD);
// DPDK mbufs and their pools may be used and freed from any thread.
unsafe impl Send for RteMbuf {}

impl RteMbuf {
    /// Takes ownership of `m` (`None` when null).
    ///
    /// # Safety
    /// `m` must be a valid, initialised packet mbuf that nothing else will use or free.
    #[inline(always)]
    pub unsafe fn from_raw(m: *mut rte_mbuf) -> Option<Self> {
        NonNull::new(m).map(RteMbuf)
    }

    /// Gives up ownership: the caller must free the mbuf (or hand it to DPDK).
    #[inline(always)]
    pub fn into_raw(self) -> *mut rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// The mbuf pointer (ownership stays here).
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut rte_mbuf {
        self.0.as_ptr()
    }

    /// The mbuf's fields, for the safe `dpdk_sys::mbuf` accessors.
    #[inline(always)]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: self owns a valid mbuf (refcount 1): nobody else writes it while self is
        // borrowed.
        unsafe { self.0.as_ref() }
    }

    /// A new mbuf from `pool` holding a copy of `data` (for tests and packet generators);
    /// `None` when the pool is empty or `data` does not fit.
    pub fn from_slice(pool: &DpdkMempool, data: &[u8]) -> Option<Self> {
        let mut m = pool.alloc()?;
        m.append(data.len())?.copy_from_slice(data);
        Some(m)
    }

    /// Frees every mbuf of `pkts` with one `rte_pktmbuf_free_bulk` call and empties it.
    #[inline]
    pub fn free_bulk<const N: usize>(pkts: &mut Burst<RteMbuf, N>) {
        let n = pkts.len();
        if n == 0 {
            return;
        }
        // SAFETY: RteMbuf is a transparent NonNull<rte_mbuf>, so the burst's first n values
        // are n valid owned mbuf pointers; DPDK frees them all, then the burst forgets them.
        unsafe {
            dpdk_sys::rte_pktmbuf_free_bulk(pkts.as_mut_ptr().cast::<*mut rte_mbuf>(), n as u32);
            pkts.set_len(0);
        }
    }

    /// Number of segments (`nb_segs`).
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        // SAFETY: self owns a valid mbuf.
        unsafe { (*self.as_ptr()).nb_segs }
    }

    /// Length of the whole chain (`pkt_len`).
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        f::pkt_len(self.raw())
    }

    /// Offload flags (`ol_flags`, `RTE_MBUF_F_*`).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        f::ol_flags(self.raw())
    }
}

impl Drop for RteMbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: self uniquely owns the mbuf; it is not used after this.
        unsafe { dpdk_sys::dpdk_shim_pktmbuf_free(self.as_ptr()) }
    }
}

impl PacketBuf for RteMbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let m = self.raw();
        let p = f::mtod(m);
        // The unreachable branch below tells the compiler what from_raw_parts requires anyway,
        // that p is not null, so it drops null tests on slices taken from the data (an
        // `Option<&[u8; N]>`'s niche).
        // SAFETY: self owns a valid mbuf whose first segment holds data_len initialised bytes
        // at mtod, inside its non-null buffer (DPDK invariant data_off + data_len <= buf_len),
        // so p is not null; the borrow of self keeps them alive and unaliased by writers.
        unsafe {
            if p.is_null() {
                std::hint::unreachable_unchecked();
            }
            std::slice::from_raw_parts(p, usize::from(f::data_len(m)))
        }
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let (p, len) = (f::mtod(self.raw()), usize::from(f::data_len(self.raw())));
        // SAFETY: as in `data` (p is not null), and &mut self makes the borrow exclusive
        // (refcount 1).
        unsafe {
            if p.is_null() {
                std::hint::unreachable_unchecked();
            }
            std::slice::from_raw_parts_mut(p, len)
        }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        usize::from(f::data_len(self.raw()))
    }

    #[inline]
    fn headroom(&self) -> usize {
        usize::from(f::headroom(self.raw()))
    }

    #[inline]
    fn tailroom(&self) -> usize {
        usize::from(f::tailroom(self.raw()))
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: self owns a valid mbuf; rte_pktmbuf_prepend checks the headroom and
        // returns NULL (changing nothing) when it is too small.
        let p = unsafe { dpdk_sys::dpdk_shim_pktmbuf_prepend(self.as_ptr(), n16) };
        // SAFETY: on success p points at the n bytes just added in front of the data.
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else { return false };
        // SAFETY: self owns a valid mbuf; rte_pktmbuf_adj returns NULL and changes nothing
        // when n > data_len.
        !unsafe { dpdk_sys::dpdk_shim_pktmbuf_adj(self.as_ptr(), n16) }.is_null()
    }

    #[inline]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: self owns a valid mbuf; rte_pktmbuf_append checks the last segment's
        // tailroom and returns NULL (changing nothing) when it is too small.
        let p = unsafe { dpdk_sys::dpdk_shim_pktmbuf_append(self.as_ptr(), n16) };
        // SAFETY: on success p points at the n bytes just added at the end.
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else { return false };
        // SAFETY: self owns a valid mbuf; rte_pktmbuf_trim returns -1 and changes nothing
        // when n > the last segment's data_len.
        unsafe { dpdk_sys::dpdk_shim_pktmbuf_trim(self.as_ptr(), n16) == 0 }
    }

    /// Port, packet type and hash from their `rte_mbuf` fields; the header lengths are
    /// derived, not stored (see [`set_class`](Self::set_class)): `l2_len` from the packet
    /// type's L2 bits, `l3_len` and `l4_len` by classifying the headers again at the level
    /// whose packet type is the stored one ([`Level::Lengths`](crate::classify::Level::Lengths),
    /// or [`Level::L3`](crate::classify::Level::L3) with L4 length 0), and 0 when neither
    /// gives it. `queue` and `timestamp` are 0.
    fn meta(&self) -> PacketMeta {
        use crate::classify::{classify_one_l3, classify_one_lengths};
        let (ptype, d) = (self.ptype(), self.data());
        let c = classify_one_lengths(d);
        let (l3, l4) = if c.ptype == ptype {
            (c.l3_len, u8::try_from(c.l4_len).unwrap_or(u8::MAX))
        } else {
            let c = classify_one_l3(d);
            if c.ptype == ptype {
                (c.l3_len, 0)
            } else {
                (0, 0)
            }
        };
        PacketMeta {
            port: self.port(),
            queue: 0,
            ptype,
            hash: self.hash(),
            l2_len: self.l2_len(),
            l3_len: l3,
            l4_len: l4,
            timestamp: 0,
        }
    }

    /// Stores port, packet type and hash; the lengths are derived from the packet type and
    /// the headers (see [`meta`](PacketBuf::meta)), and `queue` and `timestamp` have no
    /// `rte_mbuf` field, so those are not kept.
    fn set_meta(&mut self, meta: PacketMeta) {
        self.set_port(meta.port);
        self.set_hash(meta.hash);
        self.set_class(meta.ptype, meta.l2_len, meta.l3_len, meta.l4_len);
    }

    #[inline(always)]
    fn ptype(&self) -> u32 {
        f::packet_type(self.raw())
    }

    /// The L2 length the packet type's L2 bits stand for ([`ptype::l2_len`](crate::classify::ptype::l2_len)),
    /// which is the one the classifier measured.
    #[inline(always)]
    fn l2_len(&self) -> u8 {
        crate::classify::ptype::l2_len(self.ptype())
    }

    /// Stores the packet type only, in the mbuf's first cache line, as DPDK's own software
    /// packet type parse does: the lengths are derived when read ([`l2_len`](PacketBuf::l2_len),
    /// [`meta`](PacketBuf::meta)), so the classify pass never touches the second line, where
    /// `tx_offload` is. `tx_offload` is left as it was; a stage that requests a transmit
    /// offload writes it itself.
    #[inline(always)]
    fn set_class(&mut self, ptype: u32, _l2_len: u8, _l3_len: u16, _l4_len: u8) {
        // SAFETY: self owns a valid mbuf exclusively (&mut self).
        unsafe { (*self.as_ptr()).__bindgen_anon_1.packet_type = ptype }
    }

    #[inline(always)]
    fn port(&self) -> u16 {
        f::port(self.raw())
    }

    #[inline(always)]
    fn set_port(&mut self, port: u16) {
        // SAFETY: self owns a valid mbuf exclusively.
        unsafe { (*self.as_ptr()).port = port }
    }

    /// The RSS hash when the NIC (or [`set_hash`](PacketBuf::set_hash)) provided one
    /// (`RTE_MBUF_F_RX_RSS_HASH`), else 0.
    #[inline(always)]
    fn hash(&self) -> u32 {
        let m = self.raw();
        if f::ol_flags(m) & dpdk_sys::RTE_MBUF_F_RX_RSS_HASH != 0 {
            f::rss_hash(m)
        } else {
            0
        }
    }

    #[inline(always)]
    fn set_hash(&mut self, hash: u32) {
        let m = self.as_ptr();
        // SAFETY: self owns a valid mbuf exclusively.
        unsafe {
            (*m).__bindgen_anon_2.hash.rss = hash;
            (*m).ol_flags |= dpdk_sys::RTE_MBUF_F_RX_RSS_HASH;
        }
    }
}

/// Settings of a [`DpdkMempool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkMempoolConfig {
    /// Pool name (unique in the process, at most 25 bytes).
    pub name: String,
    /// Number of mbufs (`2^q - 1` uses memory best).
    pub size: u32,
    /// Per-lcore cache size (256 default; at most 512 and `size / 1.5`).
    pub cache_size: u32,
    /// Data room per mbuf including the 128-byte headroom (2176 default).
    pub data_room: u16,
    /// NUMA socket to allocate on (`None`: any).
    pub socket: Option<u32>,
}

impl DpdkMempoolConfig {
    /// `size` mbufs of the default data room, cache 256, any socket.
    pub fn new(name: &str, size: u32) -> Self {
        DpdkMempoolConfig {
            name: name.to_string(),
            size,
            cache_size: 256,
            data_room: dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            socket: None,
        }
    }
}

struct PoolInner {
    mp: NonNull<rte_mempool>,
    cfg: DpdkMempoolConfig,
}

// SAFETY: rte_mempool is a thread-safe object (its ring and per-lcore caches); the pointer
// is only used through DPDK's API.
unsafe impl Send for PoolInner {}
// SAFETY: see Send.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: mp is a live pool created by us.
        let avail = unsafe { dpdk_sys::rte_mempool_avail_count(self.mp.as_ptr()) };
        if avail == self.cfg.size {
            // SAFETY: every mbuf is back in the pool and no handle remains.
            unsafe { dpdk_sys::rte_mempool_free(self.mp.as_ptr()) };
        } else {
            log::warn!(
                "DPDK mempool {:?}: {} of {} mbufs still out at drop; leaking the pool",
                self.cfg.name,
                self.cfg.size - avail.min(self.cfg.size),
                self.cfg.size
            );
        }
    }
}

/// A DPDK packet mbuf pool (`rte_pktmbuf_pool_create`), shared by handle. Freed when the
/// last handle goes, if every mbuf is back (otherwise it is leaked with a warning, since
/// freeing it under live mbufs would be unsound).
#[derive(Clone)]
pub struct DpdkMempool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for DpdkMempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpdkMempool")
            .field("name", &self.inner.cfg.name)
            .field("size", &self.inner.cfg.size)
            .field("avail", &self.avail())
            .finish()
    }
}

/// Pools made by [`DpdkMempool::for_socket`], one per socket.
static SOCKET_POOLS: Mutex<Vec<(u32, DpdkMempool)>> = Mutex::new(Vec::new());

impl DpdkMempool {
    /// Creates a pool.
    ///
    /// # Errors
    /// EAL not initialised, a bad name, or `rte_pktmbuf_pool_create` failing (no memory, a
    /// pool of that name exists, cache too large).
    pub fn new(cfg: DpdkMempoolConfig) -> Result<Self, DpdkError> {
        let eal = Eal::require()?;
        if cfg.name.is_empty() || cfg.name.len() > 25 {
            return Err(DpdkError::InvalidArg { arg: cfg.name, msg: "a pool name must be 1 to 25 bytes".into() });
        }
        let name = CString::new(cfg.name.as_str())
            .map_err(|_| DpdkError::InvalidArg { arg: cfg.name.clone(), msg: "contains a NUL byte".into() })?;
        let socket = cfg.socket.map_or(dpdk_sys::SOCKET_ID_ANY, |s| s as i32);
        let _ = eal;
        // SAFETY: EAL is up; name is a valid C string; DPDK validates the numbers.
        let mp = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(name.as_ptr(), cfg.size, cfg.cache_size, 0, cfg.data_room, socket)
        };
        match NonNull::new(mp) {
            Some(mp) => Ok(DpdkMempool { inner: Arc::new(PoolInner { mp, cfg }) }),
            None => Err(DpdkError::call(
                format!("rte_pktmbuf_pool_create({:?}, {} mbufs, socket {socket})", cfg.name, cfg.size),
                dpdk_sys::rte_errno(),
            )),
        }
    }

    /// The process-wide default pool of NUMA socket `socket` (`size` mbufs when this call
    /// makes it), made on first use and kept for the life of the process.
    ///
    /// # Errors
    /// As [`DpdkMempool::new`].
    pub fn for_socket(socket: u32, size: u32) -> Result<Self, DpdkError> {
        let mut pools = SOCKET_POOLS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = pools.iter().find(|(s, _)| *s == socket) {
            return Ok(p.clone());
        }
        let mut cfg = DpdkMempoolConfig::new(&format!("dp_mbuf_s{socket}"), size);
        cfg.socket = Some(socket);
        let p = DpdkMempool::new(cfg)?;
        pools.push((socket, p.clone()));
        Ok(p)
    }

    /// The `rte_mempool` pointer.
    pub fn as_ptr(&self) -> *mut rte_mempool {
        self.inner.mp.as_ptr()
    }

    /// The configuration.
    pub fn config(&self) -> &DpdkMempoolConfig {
        &self.inner.cfg
    }

    /// Number of mbufs.
    pub fn size(&self) -> u32 {
        self.inner.cfg.size
    }

    /// Mbufs in the pool, per-lcore caches included (`rte_mempool_avail_count`).
    pub fn avail(&self) -> u32 {
        // SAFETY: a live pool.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.as_ptr()) }
    }

    /// Mbufs out of the pool (`size - avail`).
    pub fn in_use(&self) -> u32 {
        self.size().saturating_sub(self.avail())
    }

    /// One mbuf (reset, empty), or `None` when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<RteMbuf> {
        ensure_registered();
        // SAFETY: a live pool; the result is a fresh mbuf we own, or NULL.
        unsafe { RteMbuf::from_raw(dpdk_sys::dpdk_shim_pktmbuf_alloc(self.as_ptr())) }
    }

    /// Appends `n` fresh mbufs to `out` (all or none: `rte_pktmbuf_alloc_bulk`).
    ///
    /// # Errors
    /// `Err(())` when `out` has less than `n` free places or the pool has fewer than `n`.
    #[inline]
    #[allow(clippy::result_unit_err)]
    pub fn alloc_bulk<const N: usize>(&self, out: &mut Burst<RteMbuf, N>, n: usize) -> Result<(), ()> {
        if n > out.spare() {
            return Err(());
        }
        ensure_registered();
        let len = out.len();
        // SAFETY: the spare tail has room for n pointers (RteMbuf is a transparent pointer);
        // on success DPDK wrote n valid fresh mbufs there, which the burst then owns.
        unsafe {
            let dst = out.as_mut_ptr().add(len).cast::<*mut rte_mbuf>();
            if dpdk_sys::dpdk_shim_pktmbuf_alloc_bulk(self.as_ptr(), dst, n as u32) != 0 {
                return Err(());
            }
            out.set_len(len + n);
        }
        Ok(())
    }
}
