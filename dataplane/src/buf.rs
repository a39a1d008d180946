//! The buffer abstraction every port and every processing stage is generic over.
//!
//! Packets reach a worker in three forms: our own [`Mbuf`](crate::mbuf::Mbuf)s (null, ring,
//! pcap, AF_PACKET, and AF_XDP frames, which live in the same mempool region), and DPDK's
//! `rte_mbuf`s (feature `dpdk`). Processing code (l2fwd rewrite, classification, LPM, l3fwd)
//! is written once against [`PacketBuf`] and monomorphised for each buffer type, so there is
//! no per-packet virtual call and no copy.

/// Per-packet metadata carried next to the packet data, in the spirit of `rte_mbuf`'s fields.
///
/// All fields are plain values; a buffer type stores them however suits it. The header
/// lengths are a function of the packet type and the packet bytes (the classifier's), so a
/// buffer type may derive them instead of storing them: DPDK's `RteMbuf` does, because its
/// only length fields are the transmit offload request (`tx_offload`, the mbuf's second cache
/// line). There `set_meta` and `set_class` ignore the lengths given, and `meta` and `l2_len`
/// return those of the packet's headers for the stored packet type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketMeta {
    /// Input port id.
    pub port: u16,
    /// Input queue id.
    pub queue: u16,
    /// Packet type bits (see `dataplane::classify::ptype`), 0 when unknown.
    pub ptype: u32,
    /// Flow hash (RSS Toeplitz or CRC32C), 0 when not computed.
    pub hash: u32,
    /// Length of the L2 header(s) in bytes, 0 when unknown.
    pub l2_len: u8,
    /// Length of the L3 header in bytes (including IPv4 options / IPv6 extension headers).
    pub l3_len: u16,
    /// Length of the L4 header in bytes.
    pub l4_len: u8,
    /// Receive timestamp in timer cycles ([`crate::arch::cycles`]), 0 when not stamped.
    pub timestamp: u64,
}

/// A packet buffer: one contiguous data area with headroom in front of it, plus metadata.
///
/// Implemented by [`Mbuf`](crate::mbuf::Mbuf) and, with feature `dpdk`, by the DPDK mbuf
/// wrapper. Every method is O(1) and never allocates.
pub trait PacketBuf: Send + Sized + 'static {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    /// The packet bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Packet length in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True when the packet has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes free in front of the data.
    fn headroom(&self) -> usize;
    /// Bytes free after the data.
    fn tailroom(&self) -> usize;
    /// Grows the packet at the front by `n` bytes (for pushing a header) and returns the new
    /// front, or `None` (nothing changed) when the headroom is smaller than `n`.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front; `false` (nothing changed) when the packet is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Grows the packet at the end by `n` bytes and returns them, or `None` when the tailroom
    /// is smaller than `n`.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the end; `false` (nothing changed) when the packet is shorter.
    fn trim(&mut self, n: usize) -> bool;
    /// The metadata.
    fn meta(&self) -> PacketMeta;
    /// Replaces the metadata.
    fn set_meta(&mut self, meta: PacketMeta);
    /// Input port id (fast path for `meta().port`).
    fn port(&self) -> u16;
    /// Sets the input port id.
    fn set_port(&mut self, port: u16);
    /// Flow hash (fast path for `meta().hash`).
    fn hash(&self) -> u32;
    /// Sets the flow hash.
    fn set_hash(&mut self, hash: u32);
    /// Packet type bits (fast path for `meta().ptype`; see `dataplane::classify::ptype`).
    #[inline(always)]
    fn ptype(&self) -> u32 {
        self.meta().ptype
    }
    /// Length of the L2 header(s) (fast path for `meta().l2_len`).
    #[inline(always)]
    fn l2_len(&self) -> u8 {
        self.meta().l2_len
    }
    /// Writes the classifier's fields (packet type and header lengths) and leaves the rest
    /// of the metadata alone: the per-packet write of the worker loop's classify pass, which
    /// buffer types implement as plain stores instead of a read-modify-write of the whole
    /// [`PacketMeta`]. A buffer type that derives the lengths ([`PacketMeta`]) stores only
    /// the packet type.
    #[inline(always)]
    fn set_class(&mut self, ptype: u32, l2_len: u8, l3_len: u16, l4_len: u8) {
        let mut m = self.meta();
        m.ptype = ptype;
        m.l2_len = l2_len;
        m.l3_len = l3_len;
        m.l4_len = l4_len;
        self.set_meta(m);
    }
    /// Prefetches the first cache line of the packet data for reading and writing.
    fn prefetch(&self) {
        crate::arch::prefetch(self.data().as_ptr());
    }
}
