//! `#[inline]` field accessors for `struct rte_mbuf`, the Rust twins of
//! `rte_pktmbuf_mtod`, `rte_pktmbuf_data_len`, ... and of the `dpdk_shim_pktmbuf_*`
//! functions, without a call per packet.
//!
//! They read the bindgen layout of [`rte_mbuf`] (checked at compile time by bindgen's
//! layout assertions, and against the C shim in `tests/eal.rs`). Only first-segment
//! semantics are covered, as in the C macros; multi-segment packets need `next`.
//!
//! All functions are `unsafe` because they dereference a raw mbuf pointer.

use crate::rte_mbuf;

/// `rte_pktmbuf_mtod(m, void *)`: start of the packet data (`buf_addr + data_off`).
///
/// # Safety
/// `m` must point to a valid, initialised `rte_mbuf`.
#[inline(always)]
pub unsafe fn mtod(m: *const rte_mbuf) -> *mut u8 {
    // SAFETY: the caller guarantees m is valid; buf_addr + data_off stays inside the
    // mbuf's data buffer by DPDK's own invariant (data_off <= buf_len).
    unsafe { (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off)) }
}

/// `m->buf_addr`: start of the mbuf's data buffer (headroom included).
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn buf_addr(m: *const rte_mbuf) -> *mut u8 {
    // SAFETY: the caller guarantees m is valid.
    unsafe { (*m).buf_addr.cast::<u8>() }
}

/// `m->buf_len`: size of the data buffer.
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn buf_len(m: *const rte_mbuf) -> u16 {
    // SAFETY: the caller guarantees m is valid.
    unsafe { (*m).buf_len }
}

/// `rte_pktmbuf_data_len(m)`: bytes of data in this segment.
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn data_len(m: *const rte_mbuf) -> u16 {
    // SAFETY: the caller guarantees m is valid.
    unsafe { (*m).data_len }
}

/// `rte_pktmbuf_pkt_len(m)`: bytes of data in the whole chain.
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn pkt_len(m: *const rte_mbuf) -> u32 {
    // SAFETY: the caller guarantees m is valid.
    unsafe { (*m).pkt_len }
}

/// `m->data_off`: offset of the data from `buf_addr` (= headroom).
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn data_off(m: *const rte_mbuf) -> u16 {
    // SAFETY: the caller guarantees m is valid.
    unsafe { (*m).data_off }
}

/// `m->port`: input port.
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn port(m: *const rte_mbuf) -> u16 {
    // SAFETY: the caller guarantees m is valid.
    unsafe { (*m).port }
}

/// `m->ol_flags`: offload flags (`RTE_MBUF_F_*`).
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn ol_flags(m: *const rte_mbuf) -> u64 {
    // SAFETY: the caller guarantees m is valid.
    unsafe { (*m).ol_flags }
}

/// `m->packet_type`: `RTE_PTYPE_*` bits.
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn packet_type(m: *const rte_mbuf) -> u32 {
    // SAFETY: the caller guarantees m is valid; the union's u32 view covers all 4 bytes.
    unsafe { (*m).__bindgen_anon_1.packet_type }
}

/// `m->hash.rss`: the RSS hash (meaningful when `RTE_MBUF_F_RX_RSS_HASH` is set).
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn rss_hash(m: *const rte_mbuf) -> u32 {
    // SAFETY: the caller guarantees m is valid; every view of the hash union starts
    // with a plain u32.
    unsafe { (*m).__bindgen_anon_2.hash.rss }
}

/// `rte_pktmbuf_headroom(m)` (= `data_off`).
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn headroom(m: *const rte_mbuf) -> u16 {
    // SAFETY: forwarded precondition.
    unsafe { data_off(m) }
}

/// `rte_pktmbuf_tailroom(m)`: `buf_len - (data_off + data_len)`.
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn tailroom(m: *const rte_mbuf) -> u16 {
    // SAFETY: forwarded precondition; DPDK keeps data_off + data_len <= buf_len, and
    // wrapping keeps this panic-free even for a corrupt mbuf.
    unsafe { buf_len(m).wrapping_sub(data_off(m).wrapping_add(data_len(m))) }
}
