//! Memory a device reaches by DMA: areas of our own (descriptor rings) and the mempool's
//! region (packet buffers), each with its IOVA, the address the device uses.
//!
//! - [`DmaArea`]: zeroed, page-aligned memory mapped for the device at an IOVA, read and
//!   written by the driver with volatile accesses of exact width. Descriptor rings live in
//!   one each. The device loses access (IOMMU unmap) before the memory is freed.
//! - [`PoolDma`]: a mempool's whole region mapped once per VFIO container, at
//!   `IOVA = iova_base + offset in the region`, so a buffer's IOVA is one subtraction and
//!   one addition away from its address: rx descriptors point straight into pool chunks
//!   and tx descriptors at the mbuf's data, with no copy.
//! - [`IovaAllocator`]: hands out IOVA ranges inside what the IOMMU accepts.
//!
//! Both kinds are created by a [`super::DeviceAccess`] (`alloc_dma`, `map_pool`), so a
//! simulated device maps them into its own model of an IOMMU instead of the kernel's.
#![allow(unsafe_code)]

use crate::mbuf::Mempool;
use std::fmt;
use std::ptr::NonNull;

/// The lowest IOVA handed out: 4 GiB, above the x86 MSI window (0xfee00000) and the
/// SMMU's software MSI window (0x08000000), so a long region never straddles either even
/// when the kernel does not report its reserved ranges.
pub const IOVA_START: u64 = 1 << 32;

/// The IOVA space assumed when the kernel does not report one (before Linux 5.4): 39 bits,
/// the smallest address width of Intel VT-d and of common SMMU configurations.
pub const DEFAULT_IOVA_END: u64 = (1 << 39) - 1;

/// Something that keeps a DMA mapping alive and removes it when dropped (a VFIO
/// `DmaMapping`, or a simulated IOMMU entry).
pub trait DmaKeep: Send + Sync + fmt::Debug {}
impl<T: Send + Sync + fmt::Debug> DmaKeep for T {}

/// Zeroed, page-aligned memory mapped for a device at [`DmaArea::iova`].
///
/// Accessors are volatile, of exactly the width named, little-endian (the byte order of
/// virtio 1.x and of Intel NICs), and bounds-checked: an access outside the area reads 0
/// and writes nothing (and trips a debug assertion), it never touches other memory.
pub struct DmaArea {
    // Declared first so that it drops first: the device loses access before the memory
    // below is unmapped and can be reused.
    _keep: Box<dyn DmaKeep>,
    ptr: NonNull<u8>,
    len: usize,
    iova: u64,
    _mem: memmap2::MmapRaw,
}

// SAFETY: the area exclusively owns its mapping; the raw pointer is into it. Sharing it
// between threads is as safe as sharing `&[AtomicU8]`-like volatile memory: every access
// is a single volatile load or store.
unsafe impl Send for DmaArea {}
// SAFETY: as above; `&DmaArea` only allows volatile single accesses.
unsafe impl Sync for DmaArea {}

impl fmt::Debug for DmaArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaArea").field("iova", &format_args!("{:#x}", self.iova)).field("len", &self.len).finish()
    }
}

/// Anonymous, zeroed, page-aligned memory of at least `len` bytes (a multiple of the page
/// size), populated so the device never meets an unbacked page.
///
/// # Errors
/// The OS error of `mmap`.
pub fn anon_memory(len: usize) -> std::io::Result<memmap2::MmapRaw> {
    let page = page_size();
    let len = len.max(1).div_ceil(page) * page;
    let mut o = memmap2::MmapOptions::new();
    o.len(len);
    if !cfg!(miri) {
        o.populate();
    }
    o.map_anon().map(memmap2::MmapRaw::from)
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

impl DmaArea {
    /// Wraps memory `mem` that `keep` has mapped for the device at `iova`.
    pub fn new(mem: memmap2::MmapRaw, iova: u64, keep: Box<dyn DmaKeep>) -> Self {
        let len = mem.len();
        // mmap never returns null for a successful mapping; a dangling pointer with len 0
        // would only be reachable through bounds checks that then fail.
        let ptr = NonNull::new(mem.as_mut_ptr()).unwrap_or(NonNull::dangling());
        DmaArea { _keep: keep, ptr, len, iova, _mem: mem }
    }

    /// The device address of the first byte.
    #[inline(always)]
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// Length in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty area (never: areas are at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The process address of the first byte (for a simulated device's IOMMU).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// A pointer to `n` bytes at `off`, naturally aligned, when they are inside the area.
    #[inline(always)]
    fn at(&self, off: usize, n: usize) -> Option<*mut u8> {
        let ok = off % n == 0 && off.checked_add(n).is_some_and(|e| e <= self.len);
        debug_assert!(ok, "DMA area access {off:#x}+{n} outside {:#x} bytes", self.len);
        // SAFETY: off + n <= len, so the pointer stays inside the mapping.
        ok.then(|| unsafe { self.ptr.as_ptr().add(off) })
    }

    /// Volatile load of the byte at `off`.
    #[inline(always)]
    pub fn read_u8(&self, off: usize) -> u8 {
        // SAFETY: `at` checked bounds; the mapping lives as long as `self`.
        self.at(off, 1).map_or(0, |p| unsafe { p.read_volatile() })
    }

    /// Volatile load of the little-endian u16 at `off` (2-byte aligned).
    #[inline(always)]
    pub fn read_u16(&self, off: usize) -> u16 {
        // SAFETY: `at` checked bounds and alignment; the mapping lives as long as `self`.
        self.at(off, 2).map_or(0, |p| u16::from_le(unsafe { (p as *const u16).read_volatile() }))
    }

    /// Volatile load of the little-endian u32 at `off` (4-byte aligned).
    #[inline(always)]
    pub fn read_u32(&self, off: usize) -> u32 {
        // SAFETY: as in `read_u16`.
        self.at(off, 4).map_or(0, |p| u32::from_le(unsafe { (p as *const u32).read_volatile() }))
    }

    /// Volatile load of the little-endian u64 at `off` (8-byte aligned).
    #[inline(always)]
    pub fn read_u64(&self, off: usize) -> u64 {
        // SAFETY: as in `read_u16`.
        self.at(off, 8).map_or(0, |p| u64::from_le(unsafe { (p as *const u64).read_volatile() }))
    }

    /// Volatile store of a byte at `off`.
    #[inline(always)]
    pub fn write_u8(&self, off: usize, v: u8) {
        if let Some(p) = self.at(off, 1) {
            // SAFETY: `at` checked bounds; the mapping lives as long as `self`.
            unsafe { p.write_volatile(v) }
        }
    }

    /// Volatile store of a little-endian u16 at `off` (2-byte aligned).
    #[inline(always)]
    pub fn write_u16(&self, off: usize, v: u16) {
        if let Some(p) = self.at(off, 2) {
            // SAFETY: `at` checked bounds and alignment.
            unsafe { (p as *mut u16).write_volatile(v.to_le()) }
        }
    }

    /// Volatile store of a little-endian u32 at `off` (4-byte aligned).
    #[inline(always)]
    pub fn write_u32(&self, off: usize, v: u32) {
        if let Some(p) = self.at(off, 4) {
            // SAFETY: as in `write_u16`.
            unsafe { (p as *mut u32).write_volatile(v.to_le()) }
        }
    }

    /// Volatile store of a little-endian u64 at `off` (8-byte aligned).
    #[inline(always)]
    pub fn write_u64(&self, off: usize, v: u64) {
        if let Some(p) = self.at(off, 8) {
            // SAFETY: as in `write_u16`.
            unsafe { (p as *mut u64).write_volatile(v.to_le()) }
        }
    }

    /// Copies `src` to `off` byte by byte (volatile), for control-plane buffers.
    pub fn write_bytes(&self, off: usize, src: &[u8]) {
        for (i, b) in src.iter().enumerate() {
            self.write_u8(off + i, *b);
        }
    }
}

/// A mempool's region mapped for DMA at [`PoolDma::iova_base`]: the IOVA of any byte of the
/// region is `iova_base + (address - region base)`.
///
/// Holds a handle of the pool, so the region stays mapped in the process for as long as the
/// device may reach it; the IOMMU mapping goes first when this drops.
pub struct PoolDma {
    // Dropped first: unmap from the device, then let the pool go.
    _keep: Box<dyn DmaKeep>,
    iova_base: u64,
    region_base: usize,
    region_len: usize,
    pool: Mempool,
}

impl fmt::Debug for PoolDma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolDma")
            .field("pool", &self.pool.config().name)
            .field("iova_base", &format_args!("{:#x}", self.iova_base))
            .field("len", &self.region_len)
            .finish()
    }
}

impl PoolDma {
    /// Records that `keep` has mapped `pool`'s whole region at `iova_base`.
    pub fn new(pool: &Mempool, iova_base: u64, keep: Box<dyn DmaKeep>) -> Self {
        PoolDma {
            _keep: keep,
            iova_base,
            region_base: pool.region().base() as usize,
            region_len: pool.region().len(),
            pool: pool.clone(),
        }
    }

    /// The IOVA of the region's first byte.
    pub fn iova_base(&self) -> u64 {
        self.iova_base
    }

    /// The constant that turns an address in the region into its IOVA: `iova = address +
    /// delta` (wrapping). A driver keeps it in its queues so that the per-packet translation
    /// is one addition.
    #[inline(always)]
    pub fn iova_delta(&self) -> u64 {
        self.iova_base.wrapping_sub(self.region_base as u64)
    }

    /// The pool mapped.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// The IOVA of `p`, an address inside the region (the data pointer of one of the pool's
    /// mbufs, or a few bytes before it in the headroom).
    #[inline(always)]
    pub fn iova(&self, p: *const u8) -> u64 {
        let off = (p as usize).wrapping_sub(self.region_base);
        debug_assert!(off < self.region_len, "address {p:p} is not in the pool's region");
        self.iova_base.wrapping_add(off as u64)
    }
}

/// Hands out IOVA ranges, aligned, inside the ranges the IOMMU accepts, from
/// [`IOVA_START`] up. A bump allocator: freed ranges are not reused, which is fine for the
/// handful of mappings a process makes (one per pool, one per ring); 2^39 bytes of space
/// last a long time.
#[derive(Debug, Clone)]
pub struct IovaAllocator {
    ranges: Vec<(u64, u64)>,
    next: u64,
}

impl IovaAllocator {
    /// An allocator over `ranges` (inclusive `(start, end)` pairs; `None`: everything up
    /// to [`DEFAULT_IOVA_END`]).
    pub fn new(ranges: Option<Vec<(u64, u64)>>) -> Self {
        let mut ranges = ranges.unwrap_or_else(|| vec![(0, DEFAULT_IOVA_END)]);
        ranges.retain(|(s, e)| s <= e);
        ranges.sort_unstable();
        IovaAllocator { ranges, next: IOVA_START }
    }

    /// Takes `len` bytes aligned to `align` (a power of two); `None` when no range has room.
    pub fn alloc(&mut self, len: u64, align: u64) -> Option<u64> {
        if len == 0 || !align.is_power_of_two() {
            return None;
        }
        for &(start, end) in &self.ranges {
            let from = self.next.max(start);
            let Some(at) = from.checked_add(align - 1).map(|v| v & !(align - 1)) else { continue };
            let Some(last) = at.checked_add(len - 1) else { continue };
            if last <= end {
                self.next = last.saturating_add(1);
                return Some(at);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug)]
    struct NoMap;

    #[test]
    fn area_accessors_are_little_endian_and_bounded() {
        let a = DmaArea::new(anon_memory(100).unwrap(), 0x1000, Box::new(NoMap));
        assert_eq!(a.len(), page_size());
        a.write_u64(8, 0x0102_0304_0506_0708);
        assert_eq!(a.read_u8(8), 0x08);
        assert_eq!(a.read_u16(10), 0x0506);
        assert_eq!(a.read_u32(12), 0x0102_0304);
        a.write_u16(0, 0xbeef);
        a.write_bytes(2, &[1, 2]);
        assert_eq!(a.read_u32(0), 0x0201_beef);
        assert_eq!(a.iova(), 0x1000);
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn area_out_of_bounds_reads_zero_and_writes_nothing() {
        let a = DmaArea::new(anon_memory(1).unwrap(), 0, Box::new(NoMap));
        let end = a.len();
        a.write_u32(end, 5);
        assert_eq!(a.read_u32(end), 0);
        assert_eq!(a.read_u16(1), 0, "unaligned");
    }

    #[test]
    fn pool_iova_is_offset_plus_base() {
        let mut c = crate::mbuf::MempoolConfig::new("dma", 8);
        c.backing = crate::mbuf::MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        let d = PoolDma::new(&pool, 0x1_0000_0000, Box::new(NoMap));
        let m = pool.alloc().unwrap();
        use crate::buf::PacketBuf;
        assert_eq!(d.iova(m.data().as_ptr()), 0x1_0000_0000 + pool.data_offset(&m).unwrap());
        assert_eq!((m.data().as_ptr() as u64).wrapping_add(d.iova_delta()), d.iova(m.data().as_ptr()));
        assert_eq!(d.pool().id(), pool.id());
    }

    #[test]
    fn iova_allocator_skips_reserved_windows() {
        // x86-like: a hole at the MSI window, and the usable space above 4 GiB.
        let mut a = IovaAllocator::new(Some(vec![(0, 0xfedf_ffff), (0xfef0_0000, (1 << 40) - 1)]));
        assert_eq!(a.alloc(0x1000, 0x1000), Some(IOVA_START));
        assert_eq!(a.alloc(0x200000, 0x200000), Some(IOVA_START + 0x200000));
        // Only a range below IOVA_START: nothing.
        let mut a = IovaAllocator::new(Some(vec![(0, 0xffff_ffff)]));
        assert_eq!(a.alloc(0x1000, 0x1000), None);
        // Ranges that start above the cursor are used from their start.
        let mut a = IovaAllocator::new(Some(vec![(0x10_0000_0000, 0x10_0000_ffff)]));
        assert_eq!(a.alloc(0x8000, 0x1000), Some(0x10_0000_0000));
        assert_eq!(a.alloc(0x8000, 0x1000), Some(0x10_0000_8000));
        assert_eq!(a.alloc(0x1000, 0x1000), None, "full");
        assert_eq!(a.alloc(0, 0x1000), None);
        assert_eq!(a.alloc(0x1000, 3), None);
        let mut a = IovaAllocator::new(None);
        assert_eq!(a.alloc(1 << 40, 0x1000), None, "past the default 39-bit space");
    }

    proptest! {
        /// Allocations are aligned, inside a range, and never overlap.
        #[test]
        fn iova_allocations_are_disjoint(
            ranges in proptest::collection::vec((0u64..1 << 36, 1u64..1 << 34), 1..4),
            reqs in proptest::collection::vec((1u64..1 << 24, 12u32..22), 1..40),
        ) {
            let ranges: Vec<(u64, u64)> = ranges.into_iter().map(|(s, l)| (s + IOVA_START, s + IOVA_START + l)).collect();
            let mut a = IovaAllocator::new(Some(ranges.clone()));
            let mut got: Vec<(u64, u64)> = vec![];
            for (len, shift) in reqs {
                let align = 1u64 << shift;
                if let Some(at) = a.alloc(len, align) {
                    prop_assert_eq!(at % align, 0);
                    let end = at + len - 1;
                    prop_assert!(ranges.iter().any(|&(s, e)| s <= at && end <= e));
                    for &(s, e) in &got {
                        prop_assert!(end < s || at > e, "overlap");
                    }
                    got.push((at, end));
                }
            }
        }
    }
}
