//! Memory barriers between the CPU and a DMA-capable device.
//!
//! A driver shares two kinds of memory with its device: ordinary cacheable memory that the
//! device reads and writes by DMA (descriptor rings, packet buffers) and the device's
//! registers (a BAR, mapped as device memory). The device observes our stores in an order
//! the CPU is free to change unless told otherwise, and we observe its DMA writes likewise.
//! Each function below names the ordering it provides; the call sites say why the device
//! needs it.
//!
//! # The two architectures
//! - **x86_64** (TSO): stores are seen by everyone, devices included, in program order;
//!   loads are not reordered with other loads nor with later stores. The only reordering
//!   is a later load passing an earlier store (through the store buffer). DMA on x86 is
//!   cache-coherent, and UC/WC MMIO stores are not reordered ahead of earlier stores to WB
//!   memory. So [`dma_wmb`], [`dma_rmb`] and [`io_wmb`] only have to stop the compiler,
//!   and [`dma_mb`] is a real fence (`mfence`), for the store→load case.
//! - **aarch64** (weakly ordered): loads and stores may be observed in any order unless a
//!   barrier, a dependency or an acquire/release says otherwise. Devices sit in the
//!   *outer shareable* domain (a PCIe device behind the SMMU, or the host CPU emulating
//!   one, is not necessarily in the inner shareable domain of our cores), so the barriers
//!   are `DMB` with the `OSH` qualifier: `DMB OSHST` orders stores against stores,
//!   `DMB OSHLD` orders loads against later loads *and* stores, `DMB OSH` orders
//!   everything. A `DMB` (not a `DSB`) is enough because we only need ordering as seen by
//!   the device, never completion: we never wait for an access to finish before, say,
//!   reading a register that depends on it. These are the barriers Linux uses for
//!   `dma_wmb`, `dma_rmb`, `dma_mb` and the write barrier inside `writel` on arm64.
//!
//! Every function is also a compiler barrier: no memory access moves across it at compile
//! time (inline assembly without `nomem`, or a `compiler_fence(SeqCst)`).
//!
//! Other architectures get a sequentially consistent fence for everything: correct for
//! coherent DMA, if slower than needed.
//!
//! # Accesses the barriers pair with
//! Ring memory is read and written with volatile accesses ([`super::dma::DmaArea`]), BAR
//! registers with single-instruction MMIO accessors (`vfio::device::mmio`). Neither orders
//! anything by itself at the CPU level; these barriers do.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use core::sync::atomic::{compiler_fence, fence, Ordering};
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
use core::sync::atomic::{fence, Ordering};

/// Store→store ordering for memory the device reads: every store before it (descriptors,
/// packet bytes) is visible to the device before any store after it (the ring index that
/// publishes them).
///
/// x86_64: a compiler barrier (stores are ordered). aarch64: `DMB OSHST`.
#[inline(always)]
pub fn dma_wmb() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier instruction; it touches no memory and no register.
    unsafe {
        core::arch::asm!("dmb oshst", options(nostack, preserves_flags))
    };
    #[cfg(target_arch = "x86_64")]
    compiler_fence(Ordering::SeqCst);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fence(Ordering::SeqCst);
}

/// Load→load (and load→store) ordering for memory the device writes: a load before it (a
/// ring index the device advanced) is satisfied before any load after it (the ring entries
/// and packet bytes that index covers) and before any store after it (reusing a buffer the
/// index says the device is done with).
///
/// x86_64: a compiler barrier (loads are not reordered with loads or later stores).
/// aarch64: `DMB OSHLD`.
#[inline(always)]
pub fn dma_rmb() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier instruction; it touches no memory and no register.
    unsafe {
        core::arch::asm!("dmb oshld", options(nostack, preserves_flags))
    };
    #[cfg(target_arch = "x86_64")]
    compiler_fence(Ordering::SeqCst);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fence(Ordering::SeqCst);
}

/// Full ordering: every load and store before it is ordered before every load and store
/// after it, as the device sees them. Needed for store→load: publishing a ring index and
/// then reading whether the device wants to be notified (otherwise the read could see the
/// flag from before the device saw the new index, and both sides would wait).
///
/// x86_64: `mfence`. aarch64: `DMB OSH`.
#[inline(always)]
pub fn dma_mb() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier instruction; it touches no memory and no register.
    unsafe {
        core::arch::asm!("dmb osh", options(nostack, preserves_flags))
    };
    #[cfg(target_arch = "x86_64")]
    fence(Ordering::SeqCst);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fence(Ordering::SeqCst);
}

/// Orders stores to memory before a following store to a device register: the device,
/// woken by the register write (a doorbell), must find the ring index we stored before it.
///
/// x86_64: a compiler barrier (an MMIO store to UC memory is not performed before earlier
/// stores to WB memory). aarch64: `DMB OSHST` (what `writel` puts before its store; the
/// register is Device-nGnRE memory, and `OSHST` covers stores to both memory types).
#[inline(always)]
pub fn io_wmb() {
    dma_wmb();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The barriers run (and, on aarch64 under qemu, are valid instructions).
    #[test]
    fn barriers_execute() {
        let mut x = 0u32;
        // SAFETY: `x` is a live local.
        unsafe { core::ptr::write_volatile(&mut x, 1) };
        dma_wmb();
        dma_rmb();
        dma_mb();
        io_wmb();
        // SAFETY: as above.
        assert_eq!(unsafe { core::ptr::read_volatile(&x) }, 1);
    }
}
