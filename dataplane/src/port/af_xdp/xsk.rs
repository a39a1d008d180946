//! AF_XDP sockets: the UMEM registered over a mempool's region, the four rings, and the
//! ledger of chunks lent to the kernel.
//!
//! # Who owns a chunk
//! A chunk given to the kernel (written to a fill ring, or as a tx descriptor) is out of the
//! pool (`Mbuf::into_raw_chunk`) and marked in the [`Ledger`] of the queue that gave it; the
//! mark is cleared when the chunk comes back (rx ring, completion ring), and only then is it
//! turned back into an [`Mbuf`] — so `Mempool::mbuf_from_offset`'s contract (the caller owns
//! the chunk) holds by construction, and a descriptor the kernel never had from us is
//! counted and ignored. When a queue is dropped its ledger moves to its socket; when the
//! socket is closed every chunk still marked is returned to the pool.

use super::netdev::{getsockopt, last_err, setsockopt};
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool, MBUF_HEADER};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub(crate) const SOL_XDP: libc::c_int = 283;
const XDP_MMAP_OFFSETS: libc::c_int = 1;
const XDP_RX_RING: libc::c_int = 2;
const XDP_TX_RING: libc::c_int = 3;
const XDP_UMEM_REG: libc::c_int = 4;
const XDP_UMEM_FILL_RING: libc::c_int = 5;
const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
pub(crate) const XDP_STATISTICS: libc::c_int = 7;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;
/// `XDP_UMEM_UNALIGNED_CHUNK_FLAG`: fill and tx addresses may point anywhere in the UMEM.
const XDP_UMEM_UNALIGNED_CHUNK_FLAG: u32 = 1 << 0;
/// In unaligned mode the kernel returns a received frame's address as the fill address in
/// the low 48 bits and the data offset from it in the high 16 (`XSK_UNALIGNED_BUF_OFFSET_SHIFT`).
const XSK_UNALIGNED_BUF_OFFSET_SHIFT: u32 = 48;

pub(crate) const XDP_SHARED_UMEM: u16 = 1 << 0;
pub(crate) const XDP_COPY: u16 = 1 << 1;
pub(crate) const XDP_ZEROCOPY: u16 = 1 << 2;
pub(crate) const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
const XDP_RING_NEED_WAKEUP: u32 = 1;

const PGOFF_RX: libc::off_t = 0;
const PGOFF_TX: libc::off_t = 0x8000_0000;
const PGOFF_FILL: libc::off_t = 0x1_0000_0000;
const PGOFF_COMP: libc::off_t = 0x1_8000_0000;

/// The UMEM offset a descriptor address stands for: in unaligned mode the high 16 bits are
/// an offset to add to the low 48; in aligned mode they are zero and this is the identity.
#[inline(always)]
pub(crate) fn desc_offset(addr: u64) -> u64 {
    (addr & ((1 << XSK_UNALIGNED_BUF_OFFSET_SHIFT) - 1)) + (addr >> XSK_UNALIGNED_BUF_OFFSET_SHIFT)
}

/// `struct xdp_desc`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct XdpDesc {
    pub addr: u64,
    pub len: u32,
    pub options: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RingOffset {
    producer: u64,
    consumer: u64,
    desc: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct MmapOffsets {
    rx: RingOffset,
    tx: RingOffset,
    fr: RingOffset,
    cr: RingOffset,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct UmemReg {
    addr: u64,
    len: u64,
    chunk_size: u32,
    headroom: u32,
    flags: u32,
    tx_metadata_len: u32,
}

/// `struct xdp_statistics`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct XdpStatistics {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// One mmapped single-producer single-consumer ring shared with the kernel.
pub(crate) struct XskRing {
    map: *mut libc::c_void,
    map_len: usize,
    prod: *const AtomicU32,
    cons: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
}

// SAFETY: the ring is used by one thread at a time (it is owned by one queue object); the
// mapping stays valid until drop.
unsafe impl Send for XskRing {}

impl XskRing {
    fn map(fd: RawFd, off: &RingOffset, size: u32, elem: usize, pgoff: libc::off_t) -> io::Result<Self> {
        let map_len = off.desc as usize + size as usize * elem;
        // SAFETY: mapping a ring of a socket we own; the kernel validates offset and length.
        let map = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(last_err());
        }
        let b = map as *mut u8;
        // SAFETY: the offsets come from XDP_MMAP_OFFSETS and lie inside the mapping; the
        // producer, consumer and flags words are 4-byte aligned u32s.
        let (prod, cons, flags, desc) = unsafe {
            (
                b.add(off.producer as usize) as *const AtomicU32,
                b.add(off.consumer as usize) as *const AtomicU32,
                b.add(off.flags as usize) as *const AtomicU32,
                b.add(off.desc as usize),
            )
        };
        // SAFETY: as above.
        let (p, c) = unsafe { ((*prod).load(Ordering::Acquire), (*cons).load(Ordering::Acquire)) };
        Ok(XskRing { map, map_len, prod, cons, flags, desc, size, cached_prod: p, cached_cons: c })
    }

    #[inline(always)]
    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping (see `map`).
        unsafe { &*self.prod }
    }

    #[inline(always)]
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping.
        unsafe { &*self.cons }
    }

    /// Producer side: free slots (refreshing the cached consumer when fewer than `want`).
    #[inline]
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        // Acquire: the kernel's reads of the slots it consumed happen before we reuse them.
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Producer side: publishes `n` slots written after the last submit.
    #[inline]
    pub(crate) fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        // Release: the slot contents are visible before the new producer index.
        self.prod().store(self.cached_prod, Ordering::Release);
    }

    /// Ring entries.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// Producer side: entries submitted but not yet taken by the kernel.
    pub(crate) fn outstanding(&self) -> u32 {
        self.cached_prod.wrapping_sub(self.cons().load(Ordering::Acquire))
    }

    /// Consumer side: entries ready, at most `want`.
    #[inline]
    pub(crate) fn ready(&mut self, want: u32) -> u32 {
        let mut avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail == 0 {
            // Acquire: the kernel's slot writes are visible after we see its index.
            self.cached_prod = self.prod().load(Ordering::Acquire);
            avail = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        avail.min(want)
    }

    /// Consumer side: gives `n` read slots back to the kernel.
    #[inline]
    pub(crate) fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        // Release: our reads of the slots happen before the kernel may overwrite them.
        self.cons().store(self.cached_cons, Ordering::Release);
    }

    /// The kernel asks for a wakeup syscall (XDP_USE_NEED_WAKEUP).
    #[inline]
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: points into the live mapping.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    /// The i-th slot after the producer index (producer side) as a u64 address slot.
    #[inline(always)]
    pub(crate) fn write_addr(&mut self, i: u32, addr: u64) {
        let idx = self.cached_prod.wrapping_add(i) & (self.size - 1);
        // SAFETY: idx < size and the mapping holds size u64 slots from desc; the slot is free
        // (the caller checked `free`).
        unsafe { (self.desc as *mut u64).add(idx as usize).write_volatile(addr) }
    }

    #[inline(always)]
    pub(crate) fn write_desc(&mut self, i: u32, d: XdpDesc) {
        let idx = self.cached_prod.wrapping_add(i) & (self.size - 1);
        // SAFETY: idx < size and the mapping holds size descriptors from desc; the slot is free.
        unsafe { (self.desc as *mut XdpDesc).add(idx as usize).write_volatile(d) }
    }

    /// The i-th ready slot (consumer side) of an address ring.
    #[inline(always)]
    pub(crate) fn read_addr(&self, i: u32) -> u64 {
        let idx = self.cached_cons.wrapping_add(i) & (self.size - 1);
        // SAFETY: idx < size; the slot was published by the kernel (the caller checked `ready`).
        unsafe { (self.desc as *const u64).add(idx as usize).read_volatile() }
    }

    #[inline(always)]
    pub(crate) fn read_desc(&self, i: u32) -> XdpDesc {
        let idx = self.cached_cons.wrapping_add(i) & (self.size - 1);
        // SAFETY: idx < size; the slot was published by the kernel.
        unsafe { (self.desc as *const XdpDesc).add(idx as usize).read_volatile() }
    }
}

impl Drop for XskRing {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; nothing refers to it after drop.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// One bit per chunk of a pool: set while the chunk is lent to the kernel.
pub(crate) struct Ledger {
    bits: Box<[u64]>,
    shift: u32,
    chunks: u64,
    held: u64,
}

impl Ledger {
    pub(crate) fn new(pool: &Mempool) -> Self {
        let chunks = pool.size() as u64;
        Ledger {
            bits: vec![0u64; chunks.div_ceil(64) as usize].into_boxed_slice(),
            shift: pool.config().chunk_size.trailing_zeros(),
            chunks,
            held: 0,
        }
    }

    /// Marks the chunk holding `addr`.
    #[inline(always)]
    pub(crate) fn lend(&mut self, addr: u64) {
        let c = addr >> self.shift;
        debug_assert!(c < self.chunks);
        if let Some(w) = self.bits.get_mut((c / 64) as usize) {
            debug_assert!(*w & (1 << (c % 64)) == 0, "chunk lent twice");
            *w |= 1 << (c % 64);
            self.held += 1;
        }
    }

    /// Clears the chunk holding `addr`; false when it was not lent (a bogus descriptor).
    #[inline(always)]
    pub(crate) fn take_back(&mut self, addr: u64) -> bool {
        let c = addr >> self.shift;
        if c >= self.chunks {
            return false;
        }
        let w = &mut self.bits[(c / 64) as usize];
        let m = 1 << (c % 64);
        if *w & m == 0 {
            return false;
        }
        *w &= !m;
        self.held -= 1;
        true
    }

    /// Chunks currently lent.
    pub(crate) fn held(&self) -> u64 {
        self.held
    }

    /// Returns every lent chunk to `pool`.
    ///
    /// # Safety
    /// The kernel must no longer use the chunks (their socket is closed).
    unsafe fn reclaim(&mut self, pool: &Mempool) {
        let mut burst: Burst<Mbuf, 64> = Burst::new();
        for wi in 0..self.bits.len() {
            let mut w = self.bits[wi];
            while w != 0 {
                let b = w.trailing_zeros() as u64;
                w &= w - 1;
                let addr = ((wi as u64 * 64 + b) << self.shift) + MBUF_HEADER as u64;
                // SAFETY: the chunk was taken out of the pool when lent and the kernel is done
                // with it (caller's contract); nobody else refers to it.
                if let Some(m) = unsafe { pool.mbuf_from_offset(addr, 0) } {
                    if burst.push(m).is_err() {
                        unreachable!("flushed below before full");
                    }
                    if burst.is_full() {
                        Mbuf::free_bulk(&mut burst);
                    }
                }
            }
            self.bits[wi] = 0;
        }
        Mbuf::free_bulk(&mut burst);
        self.held = 0;
    }
}

/// The process-wide registry of UMEMs: pool id → the socket that registered it.
static UMEMS: Mutex<Vec<(usize, Weak<XskFd>)>> = Mutex::new(Vec::new());

/// An AF_XDP socket descriptor plus what must happen when it closes.
pub(crate) struct XskFd {
    fd: Option<OwnedFd>,
    pool: Mempool,
    zerocopy: bool,
    /// Ledgers handed in by dropped queues: reclaimed after the close.
    parked: Mutex<Vec<Ledger>>,
    /// The socket that registered the UMEM (kept open while we share it).
    _owner: Option<Arc<XskFd>>,
}

impl XskFd {
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    pub(crate) fn zerocopy(&self) -> bool {
        self.zerocopy
    }

    /// Hands a dropped queue's ledger over for reclaiming at close.
    pub(crate) fn park(&self, l: Ledger) {
        if l.held() > 0 {
            self.parked.lock().unwrap_or_else(|e| e.into_inner()).push(l);
        }
    }

    pub(crate) fn statistics(&self) -> io::Result<XdpStatistics> {
        let mut s = XdpStatistics::default();
        match &self.fd {
            Some(fd) => getsockopt(fd, SOL_XDP, XDP_STATISTICS, &mut s).map(|_| s),
            None => Ok(s),
        }
    }
}

impl Drop for XskFd {
    fn drop(&mut self) {
        // Close first: after xsk_release the kernel no longer fills or sends from our chunks.
        drop(self.fd.take());
        if self.zerocopy {
            // A zero-copy driver releases its buffer pool in deferred work after the close;
            // give it a moment before the chunks are reused.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        for l in parked.iter_mut() {
            // SAFETY: the socket is closed, see above.
            unsafe { l.reclaim(&self.pool) };
        }
    }
}

/// Ring sizes and bind options of one socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SockParams {
    pub rx: u32,
    pub tx: u32,
    pub fill: u32,
    pub comp: u32,
    /// XDP_COPY / XDP_ZEROCOPY / 0 (kernel tries zero-copy, falls back to copy).
    pub mode_flag: u16,
    pub need_wakeup: bool,
    /// Register the UMEM in unaligned chunk mode (only the registering socket's setting counts).
    pub unaligned: bool,
}

/// A socket bound to one (interface, queue) with its four rings.
pub(crate) struct Xsk {
    pub fd: Arc<XskFd>,
    pub rx: XskRing,
    pub tx: XskRing,
    pub fill: XskRing,
    pub comp: XskRing,
    /// Bound with XDP_SHARED_UMEM onto another socket's UMEM.
    pub shared: bool,
}

/// Why socket setup failed: the step and the OS error.
#[derive(Debug)]
pub(crate) struct SockError {
    pub what: &'static str,
    pub err: io::Error,
}

fn step<T>(what: &'static str, r: io::Result<T>) -> Result<T, SockError> {
    r.map_err(|err| SockError { what, err })
}

/// Creates a socket on (`ifindex`, `queue`) over `pool`'s region: registers the UMEM when no
/// socket of this process has yet, else shares the existing one (XDP_SHARED_UMEM).
pub(crate) fn open(pool: &Mempool, ifindex: u32, queue: u32, p: &SockParams) -> Result<Xsk, SockError> {
    let mut reg = UMEMS.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|(_, w)| w.strong_count() > 0);
    let owner = reg.iter().find(|(id, _)| *id == pool.id()).and_then(|(_, w)| w.upgrade());

    // SAFETY: plain socket(2) call.
    let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(SockError { what: "creating an AF_XDP socket", err: last_err() });
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };

    if owner.is_none() {
        let r = pool.region();
        let umem = UmemReg {
            addr: r.base() as u64,
            len: r.len() as u64,
            chunk_size: pool.config().chunk_size,
            headroom: MBUF_HEADER as u32,
            flags: if p.unaligned { XDP_UMEM_UNALIGNED_CHUNK_FLAG } else { 0 },
            tx_metadata_len: 0,
        };
        step("registering the mempool as UMEM (XDP_UMEM_REG)", setsockopt(&fd, SOL_XDP, XDP_UMEM_REG, &umem))?;
    }
    step("sizing the fill ring", setsockopt(&fd, SOL_XDP, XDP_UMEM_FILL_RING, &(p.fill as libc::c_int)))?;
    step("sizing the completion ring", setsockopt(&fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &(p.comp as libc::c_int)))?;
    step("sizing the rx ring", setsockopt(&fd, SOL_XDP, XDP_RX_RING, &(p.rx as libc::c_int)))?;
    step("sizing the tx ring", setsockopt(&fd, SOL_XDP, XDP_TX_RING, &(p.tx as libc::c_int)))?;
    let mut off = MmapOffsets::default();
    step("reading ring offsets", getsockopt(&fd, SOL_XDP, XDP_MMAP_OFFSETS, &mut off))?;
    let d = core::mem::size_of::<XdpDesc>();
    let rx = step("mapping the rx ring", XskRing::map(raw, &off.rx, p.rx, d, PGOFF_RX))?;
    let tx = step("mapping the tx ring", XskRing::map(raw, &off.tx, p.tx, d, PGOFF_TX))?;
    let fill = step("mapping the fill ring", XskRing::map(raw, &off.fr, p.fill, 8, PGOFF_FILL))?;
    let comp = step("mapping the completion ring", XskRing::map(raw, &off.cr, p.comp, 8, PGOFF_COMP))?;

    // SAFETY: zeroed sockaddr_xdp is valid; fields set below.
    let mut sa: libc::sockaddr_xdp = unsafe { core::mem::zeroed() };
    sa.sxdp_family = libc::AF_XDP as u16;
    sa.sxdp_ifindex = ifindex;
    sa.sxdp_queue_id = queue;
    match &owner {
        // A sharing socket inherits copy/zero-copy and need_wakeup from the UMEM's owner.
        Some(o) => {
            sa.sxdp_flags = XDP_SHARED_UMEM;
            sa.sxdp_shared_umem_fd = o.raw() as u32;
        }
        None => sa.sxdp_flags = p.mode_flag | if p.need_wakeup { XDP_USE_NEED_WAKEUP } else { 0 },
    }
    // SAFETY: sa is a valid sockaddr_xdp of the given length.
    let rc = unsafe {
        libc::bind(
            raw,
            &sa as *const libc::sockaddr_xdp as *const libc::sockaddr,
            core::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(SockError { what: "binding the AF_XDP socket", err: last_err() });
    }
    let mut opts = 0u32;
    let zerocopy = getsockopt(&fd, SOL_XDP, XDP_OPTIONS, &mut opts).is_ok() && opts & XDP_OPTIONS_ZEROCOPY != 0;
    let shared = owner.is_some();
    let xfd =
        Arc::new(XskFd { fd: Some(fd), pool: pool.clone(), zerocopy, parked: Mutex::new(Vec::new()), _owner: owner });
    if !shared {
        reg.push((pool.id(), Arc::downgrade(&xfd)));
    }
    Ok(Xsk { fd: xfd, rx, tx, fill, comp, shared })
}

/// Socket options for busy polling.
pub(crate) fn set_busy_poll(fd: RawFd, usecs: u32, budget: u32) -> io::Result<()> {
    const SO_BUSY_POLL: libc::c_int = 46;
    const SO_PREFER_BUSY_POLL: libc::c_int = 69;
    const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
    // SAFETY: borrowing fd only for these calls; ManuallyDrop keeps it open afterwards.
    let f = core::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(fd) });
    setsockopt(&f, libc::SOL_SOCKET, SO_PREFER_BUSY_POLL, &1i32)?;
    setsockopt(&f, libc::SOL_SOCKET, SO_BUSY_POLL, &(usecs as i32))?;
    setsockopt(&f, libc::SOL_SOCKET, SO_BUSY_POLL_BUDGET, &(budget as i32))?;
    Ok(())
}

/// The rx wakeup (`recvfrom` with MSG_DONTWAIT): runs the driver's rx / busy-poll loop.
#[inline]
pub(crate) fn kick_rx(fd: RawFd) {
    // SAFETY: a zero-length non-blocking recvfrom on our socket; no buffer is touched.
    unsafe {
        libc::recvfrom(fd, core::ptr::null_mut(), 0, libc::MSG_DONTWAIT, core::ptr::null_mut(), core::ptr::null_mut())
    };
}

/// The tx wakeup (`sendto` with MSG_DONTWAIT). Returns the errno on failure (EAGAIN/EBUSY:
/// more to send; ENOBUFS/ENETDOWN: transient).
#[inline]
pub(crate) fn kick_tx(fd: RawFd) -> Result<(), i32> {
    // SAFETY: a zero-length non-blocking sendto on our socket; no buffer is touched.
    let rc = unsafe { libc::sendto(fd, core::ptr::null(), 0, libc::MSG_DONTWAIT, core::ptr::null(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{MemBacking, MempoolConfig};

    #[test]
    fn ledger_lend_take_back_reclaim() {
        let mut c = MempoolConfig::new("ledger", 128);
        c.backing = MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        let mut l = Ledger::new(&pool);
        let mut offs = vec![];
        for _ in 0..70 {
            let m = pool.alloc().unwrap();
            let off = pool.chunk_offset(&m).unwrap();
            m.into_raw_chunk();
            l.lend(off);
            offs.push(off);
        }
        assert_eq!(pool.in_use(), 70);
        assert!(l.take_back(offs[0] + 320));
        assert!(!l.take_back(offs[0] + 320), "a chunk comes back once");
        assert!(!l.take_back(1 << 40), "out of range is refused");
        // SAFETY: we own offs[0]'s chunk (taken back above).
        drop(unsafe { pool.mbuf_from_offset(offs[0] + 320, 0) }.unwrap());
        assert_eq!(l.held(), 69);
        // SAFETY: no kernel involved: the chunks are only marked.
        unsafe { l.reclaim(&pool) };
        assert_eq!(l.held(), 0);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn unaligned_descriptor_addresses() {
        // Fill address 0x1000 (a chunk), data 320 bytes in: the kernel reports 320 << 48 | 0x1000.
        assert_eq!(desc_offset((320 << 48) | 0x1000), 0x1000 + 320);
        // Aligned mode and our own tx addresses: the address itself.
        assert_eq!(desc_offset(0x1000 + 320), 0x1000 + 320);
        assert_eq!(desc_offset(0), 0);
    }
}
