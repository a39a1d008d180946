//! `#[inline]` field accessors for `struct rte_mbuf`, the Rust twins of
//! `rte_pktmbuf_mtod`, `rte_pktmbuf_data_len`, ... and of the `dpdk_shim_pktmbuf_*`
//! functions, without a call per packet.
//!
//! They read the bindgen layout of [`rte_mbuf`] (checked at compile time by bindgen's
//! layout assertions, and against the C shim in `tests/eal.rs`). Only first-segment
//! semantics are covered, as in the C macros; multi-segment packets need `next`.
//!
//! They are safe functions over a reference: whoever turns a raw `*mut rte_mbuf` into a
//! `&rte_mbuf` vouches that it points to a live mbuf nobody writes meanwhile (an mbuf this
//! thread owns). [`mtod`] returns a raw pointer; reading through it stays `unsafe`.

use crate::rte_mbuf;

/// `rte_pktmbuf_mtod(m, void *)`: start of the packet data (`buf_addr + data_off`).
#[inline(always)]
pub fn mtod(m: &rte_mbuf) -> *mut u8 {
    m.buf_addr.cast::<u8>().wrapping_add(usize::from(m.data_off))
}

/// `m->buf_addr`: start of the mbuf's data buffer (headroom included).
#[inline(always)]
pub fn buf_addr(m: &rte_mbuf) -> *mut u8 {
    m.buf_addr.cast::<u8>()
}

/// `m->buf_len`: size of the data buffer.
#[inline(always)]
pub fn buf_len(m: &rte_mbuf) -> u16 {
    m.buf_len
}

/// `rte_pktmbuf_data_len(m)`: bytes of data in this segment.
#[inline(always)]
pub fn data_len(m: &rte_mbuf) -> u16 {
    m.data_len
}

/// `rte_pktmbuf_pkt_len(m)`: bytes of data in the whole chain.
#[inline(always)]
pub fn pkt_len(m: &rte_mbuf) -> u32 {
    m.pkt_len
}

/// `m->data_off`: offset of the data from `buf_addr` (= headroom).
#[inline(always)]
pub fn data_off(m: &rte_mbuf) -> u16 {
    m.data_off
}

/// `m->port`: input port.
#[inline(always)]
pub fn port(m: &rte_mbuf) -> u16 {
    m.port
}

/// `m->ol_flags`: offload flags (`RTE_MBUF_F_*`).
#[inline(always)]
pub fn ol_flags(m: &rte_mbuf) -> u64 {
    m.ol_flags
}

/// `m->packet_type`: `RTE_PTYPE_*` bits.
#[inline(always)]
pub fn packet_type(m: &rte_mbuf) -> u32 {
    // SAFETY: every view of the union is plain integers; the u32 one covers all 4 bytes.
    unsafe { m.__bindgen_anon_1.packet_type }
}

/// `m->hash.rss`: the RSS hash (meaningful when `RTE_MBUF_F_RX_RSS_HASH` is set).
#[inline(always)]
pub fn rss_hash(m: &rte_mbuf) -> u32 {
    // SAFETY: every view of the hash union starts with a plain u32.
    unsafe { m.__bindgen_anon_2.hash.rss }
}

/// `rte_pktmbuf_headroom(m)` (= `data_off`).
#[inline(always)]
pub fn headroom(m: &rte_mbuf) -> u16 {
    data_off(m)
}

/// `rte_pktmbuf_tailroom(m)`: `buf_len - (data_off + data_len)`.
#[inline(always)]
pub fn tailroom(m: &rte_mbuf) -> u16 {
    // DPDK keeps data_off + data_len <= buf_len; wrapping keeps a corrupt mbuf panic-free.
    buf_len(m).wrapping_sub(data_off(m).wrapping_add(data_len(m)))
}
