//! Route lookup for l3fwd: longest-prefix match for IPv4 ([`Lpm4`], DIR-24-8 like DPDK's
//! `rte_lpm`) and IPv6 ([`Lpm6`], a 24-bit first level then 8-bit strides like `rte_lpm6`),
//! an exact-match flow table ([`EmTable`], bucketized cuckoo hash like `rte_hash`), and a
//! parser for DPDK l3fwd route files ([`rules`]).
//!
//! All tables allocate their memory once, at construction, from a [`Lpm4Config`],
//! [`Lpm6Config`] or [`EmConfig`]; an insert into a full table returns an error naming the
//! limit and the setting that raises it, and leaves the table as it was. Lookups never
//! allocate, never lock and never panic. A miss in a burst lookup is the value [`MISS`].
//!
//! Tables are built by one writer (`&mut self`) and read by many (`&self`); to change the
//! routes of a running data path, build a new table aside (for example with
//! [`Lpm4::from_routes`]) and swap it in.
#![allow(unsafe_code)]

pub mod em;
pub mod lpm4;
pub mod lpm6;
pub mod rules;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use em::{EmConfig, EmError, EmKey, EmTable, Ipv4FiveTuple, Ipv6FiveTuple};
pub use lpm4::{Lpm4, Lpm4Config, Lpm4Error};
pub use lpm6::{Lpm6, Lpm6Config, Lpm6Error};
pub use rules::{EmRoute4, EmRoute6, Route4, Route6, RuleError, RuleFileError};

/// The largest next hop the LPM tables store: next hops are 24-bit values.
pub const MAX_NEXT_HOP: u32 = 0x00FF_FFFF;

/// Written by the burst lookups for an address (or key) that has no route.
pub const MISS: u32 = u32::MAX;

/// Which burst-lookup implementation a table uses, chosen once at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkImpl {
    /// Portable scalar code: one address per iteration, the independent tbl24 loads of
    /// successive iterations overlapping in the CPU. The default on x86_64 (see
    /// [`BulkImpl::detect`]).
    Scalar,
    /// x86_64 AVX2 gathers, eight addresses at a time. Kept for comparison and for CPUs
    /// with fast gathers; choose it with [`Lpm4::set_bulk_impl`].
    Avx2,
    /// aarch64 NEON, four addresses at a time.
    Neon,
}

impl BulkImpl {
    /// The default implementation for this CPU: NEON on aarch64, scalar elsewhere. On
    /// x86_64 the scalar loop beats the AVX2 gathers while the tables are in cache
    /// (`vpgatherdd` issues its eight loads as micro-ops that crowd the reorder window;
    /// figures in `benches/LPM_RESULTS.md`), so AVX2 is not chosen automatically.
    pub fn detect() -> Self {
        #[cfg(target_arch = "aarch64")]
        {
            return BulkImpl::Neon;
        }
        #[allow(unreachable_code)]
        BulkImpl::Scalar
    }

    /// Whether this CPU can run `self`.
    pub fn is_supported(self) -> bool {
        match self {
            BulkImpl::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            BulkImpl::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "aarch64")]
            BulkImpl::Neon => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// Allocates a zeroed table of `n` values once, asking Linux for transparent huge pages on
/// the 2 MiB-aligned part of it (used for the exact-match table's buckets).
pub(crate) fn alloc_zeroed<T: Copy + Default>(n: usize) -> Box<[T]> {
    let b = vec![T::default(); n].into_boxed_slice();
    advise_huge(b.as_ptr() as *const u8, std::mem::size_of_val(&*b));
    b
}

/// Element types a [`HugeTable`] may hold: plain integers, for which every bit pattern
/// (all zeros included) is a valid value.
///
/// # Safety
/// Implementors must be `Copy`, have no padding and accept any bit pattern, in particular
/// all zeros (fresh anonymous memory).
pub(crate) unsafe trait Plain: Copy {
    /// The byte the value is made of, if all its bytes are equal (0 for zero, 0xFF for
    /// all ones): such values are filled with one `memset`.
    fn repeated_byte(self) -> Option<u8>;
}
// SAFETY: integers have no padding and no invalid bit patterns.
unsafe impl Plain for u8 {
    fn repeated_byte(self) -> Option<u8> {
        Some(self)
    }
}
// SAFETY: as above.
unsafe impl Plain for u32 {
    fn repeated_byte(self) -> Option<u8> {
        let b = self.to_le_bytes();
        (b == [b[0]; 4]).then_some(b[0])
    }
}

/// 2 MiB, the x86_64 and aarch64 (4 KiB granule) huge page size.
const HUGE_PAGE: usize = 2 << 20;

/// A fixed-length table in its own anonymous mapping, allocated once, 2 MiB-aligned and
/// advised for transparent huge pages before its first write, so that the whole table (not
/// only its 2 MiB-aligned middle, as with a `Vec`) is backed by huge pages: a random lookup
/// into tens of megabytes then needs one TLB entry per 2 MiB instead of one per 4 KiB.
/// Zero-filled tables are not written at construction (anonymous memory is zero), so their
/// pages are only committed when routes are written into them. Reserved hugetlbfs pages are
/// left to the mempools, which need them for DMA.
pub(crate) struct HugeTable<T: Plain> {
    /// The elements, inside `_map` (a fat pointer: dereferencing it needs no slice
    /// construction, which keeps debug builds' per-access checks out of the table loops).
    ptr: std::ptr::NonNull<[T]>,
    /// The mapping: the table plus up to 2 MiB of untouched slack used for the alignment.
    _map: memmap2::MmapMut,
}

// SAFETY: a HugeTable owns its mapping exclusively, like Box<[T]>.
unsafe impl<T: Plain + Send> Send for HugeTable<T> {}
// SAFETY: shared access only hands out &[T], like Box<[T]>.
unsafe impl<T: Plain + Sync> Sync for HugeTable<T> {}

impl<T: Plain> HugeTable<T> {
    /// A table of `len` copies of `value`.
    ///
    /// # Errors
    /// The OS error when the memory cannot be mapped.
    pub(crate) fn filled(len: usize, value: T) -> std::io::Result<Self> {
        let too_big = || std::io::Error::from(std::io::ErrorKind::OutOfMemory);
        let bytes = len.checked_mul(std::mem::size_of::<T>()).ok_or_else(too_big)?;
        let span = bytes.max(1).checked_next_multiple_of(HUGE_PAGE).ok_or_else(too_big)?;
        let mut map = memmap2::MmapOptions::new().len(span.checked_add(HUGE_PAGE).ok_or_else(too_big)?).map_anon()?;
        let base = map.as_mut_ptr();
        let offset = (base as usize).next_multiple_of(HUGE_PAGE) - base as usize;
        // A hint: before the first write, so that the first touch of each 2 MiB faults in a
        // huge page. The table works the same without (errors are ignored).
        #[cfg(target_os = "linux")]
        let _ = map.advise_range(memmap2::Advice::HugePage, offset, span);
        // SAFETY: offset + span <= the mapping's length (offset < HUGE_PAGE), so `first` is
        // inside the mapping, 2 MiB-aligned and therefore aligned for any integer T.
        let first = unsafe { base.add(offset) } as *mut T;
        match value.repeated_byte() {
            // Anonymous memory reads as zeros, which T: Plain accepts as a value.
            Some(0) => {}
            // SAFETY: [first, first + bytes) lies inside the mapping; any byte pattern is a
            // valid T.
            Some(b) => unsafe { std::ptr::write_bytes(first, b, len) },
            // SAFETY: as above, element by element.
            None => unsafe {
                for i in 0..len {
                    first.add(i).write(value);
                }
            },
        }
        let first = std::ptr::NonNull::new(first).ok_or_else(too_big)?;
        Ok(HugeTable { ptr: std::ptr::NonNull::slice_from_raw_parts(first, len), _map: map })
    }
}

impl<T: Plain> std::ops::Deref for HugeTable<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: ptr points to initialised elements owned by self.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Plain> std::ops::DerefMut for HugeTable<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref, and &mut self gives exclusive access.
        unsafe { self.ptr.as_mut() }
    }
}

/// Marks the 2 MiB-aligned part of `[p, p + len)` with `MADV_HUGEPAGE` (a hint; errors are
/// ignored because the table works the same without huge pages).
fn advise_huge(p: *const u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let end = (p as usize + len) & !(HUGE_PAGE - 1);
        if end > start {
            // SAFETY: [start, end) lies inside the live allocation we own; madvise with
            // MADV_HUGEPAGE changes no contents and no mapping, only the paging policy.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, len);
}

/// Network mask of `depth` leading ones in a 32-bit address (`depth` ≤ 32).
#[inline]
pub(crate) fn mask4(depth: u8) -> u32 {
    if depth == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(depth))
    }
}

/// Network mask of `depth` leading ones in a 128-bit address (`depth` ≤ 128).
#[inline]
pub(crate) fn mask6(depth: u8) -> u128 {
    if depth == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(depth))
    }
}

/// A small fast hasher for the control-path rule maps (keys are already well mixed
/// integers; SipHash would dominate the time of adding a million routes).
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_table_is_aligned_filled_and_writable() {
        // Lengths below, at and above one huge page, and values filled by memset (0, 0xFF..)
        // and element by element.
        for len in [0usize, 1, 1000, HUGE_PAGE / 4, HUGE_PAGE / 4 + 3, 3 * HUGE_PAGE / 4 + 1] {
            for value in [0u32, u32::MAX, 0x0102_0304, 0x8080_8080] {
                let mut t = HugeTable::filled(len, value).unwrap();
                assert_eq!(t.len(), len);
                assert_eq!(t.as_ptr() as usize % HUGE_PAGE, 0, "2 MiB-aligned");
                assert!(t.iter().all(|&x| x == value), "len {len} value {value:#x}");
                if let Some(last) = t.last_mut() {
                    *last = 7;
                }
                let head = len.min(5);
                t[..head].fill(9);
                let middle = head..len.saturating_sub(1).max(head);
                assert!(t[middle].iter().all(|&x| x == value));
            }
        }
        let bytes = HugeTable::filled(HUGE_PAGE + 1, 0xABu8).unwrap();
        assert!(bytes.iter().all(|&b| b == 0xAB));
        // A table the address space cannot hold is an error, not an abort.
        assert!(HugeTable::<u32>::filled(usize::MAX / 2, 0).is_err());
    }
}
