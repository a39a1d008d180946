//! Burst packet classification: packet type, header lengths, flow key and flow hash.
//!
//! For every packet of a burst [`classify_burst`] computes
//! - packet type bits in the spirit of DPDK's `RTE_PTYPE_*` (see [`ptype`]): L2 (Ethernet,
//!   VLAN, QinQ, ARP), L3 (IPv4, IPv4 with options, IPv6, IPv6 with extension headers), L4
//!   (TCP, UDP, ICMP, fragment, other), VXLAN tunnels (UDP destination port 4789) with the
//!   inner L2/L3/L4, and a [`ptype::MALFORMED`] marker;
//! - the L2/L3/L4 header lengths (and the inner ones for VXLAN);
//! - a flow hash of the flow key ([`FlowKey`]: IPv4 or IPv6 5-tuple, the MAC pair when there
//!   is no valid IP): the RSS Toeplitz hash ([`RssKey`], configurable key, compatible with NIC
//!   RSS) or CRC32C ([`HashKind`]).
//!
//! The per-packet record ([`Classified`], 24 bytes) holds what DPDK's classifier leaves in an
//! mbuf: packet type, hash and header lengths. The flow key is not written per packet; the
//! packets that need it get it from [`Classified::flow_key`], which reads it back from the
//! packet at the recorded offsets.
//!
//! # Algorithm and implementations
//! Packets are parsed one at a time by bounds-checked scalar code shared by every
//! implementation: a straight-line fast path over a fixed-size view of the first 60/78 bytes
//! for Ethernet/VLAN + IPv4 (no options) / IPv6 (no extension headers) + TCP/UDP and for ARP,
//! and an out-of-line general parser for everything else. The vector implementations screen
//! each frame's shape first: the 16 bytes from the EtherType are matched against whole-header
//! patterns (untagged IPv4 without options and not a fragment, untagged IPv6, 802.1Q-tagged
//! IPv4: EtherType, version, IHL and fragment bits at once) with one vector compare per
//! pattern (`ptest` on x86_64, a NEON compare and `umaxv` on aarch64), and only the frames that
//! match none are tested field by field. In the fast path the hash input
//! (RSS order: source address, destination address, source port, destination port) is a
//! contiguous 12- or 36-byte run of the packet itself, so it is hashed in place:
//! - CRC32C, and Toeplitz on [`Impl::Scalar`] and [`Impl::Sse42`], are computed in the parse
//!   pass (CRC32C with the `crc32` instructions on SSE4.2/AVX2/NEON, by slicing-by-8 tables on
//!   `Scalar`; Toeplitz through per-nibble lookup tables, two lookups per input byte).
//! - Toeplitz on [`Impl::Avx2`] / [`Impl::Neon`]: the parse pass copies each hash input into a
//!   zero-padded row of a stack matrix, and a kernel hashes 32 (AVX2) or 16 (NEON) packets at
//!   once: the rows are transposed with unpack/zip networks so that one vector holds the same
//!   input byte of every packet, and `pshufb`/`tbl` look the nibbles up in the per-position
//!   tables, one byte plane of the 32-bit result at a time.
//!
//! The implementation is chosen once at run time ([`implementation`]); all give bit-identical
//! results (property tests and the `classify` fuzz target compare each with the scalar one,
//! and the fast path with the general parser).
//! Measured figures: `benches/CLASSIFY_RESULTS.md`.
//!
//! Malformed or truncated packets are never an error: the layers that parsed are reported,
//! [`ptype::MALFORMED`] is set, and the hash covers the deepest valid key (the MAC pair when no
//! IP header is valid, nothing — hash 0 — when the frame is shorter than an Ethernet header).
//! Nothing allocates per packet or per burst.
#![allow(unsafe_code)]

mod scalar;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

use crate::buf::PacketBuf;
use std::sync::OnceLock;

pub use scalar::{crc32c, toeplitz_reference};

/// Packet type bits, laid out like DPDK's `RTE_PTYPE_*` (same values where DPDK has them).
///
/// A packet type is the OR of at most one value from each `*_MASK` group, plus
/// [`MALFORMED`](ptype::MALFORMED). A layer that failed to parse is not reported.
pub mod ptype {
    /// Nothing recognised.
    pub const UNKNOWN: u32 = 0;
    /// Mask of the L2 field.
    pub const L2_MASK: u32 = 0x0000_000f;
    /// Ethernet II.
    pub const L2_ETHER: u32 = 0x0000_0001;
    /// Untagged Ethernet carrying ARP.
    pub const L2_ETHER_ARP: u32 = 0x0000_0003;
    /// Ethernet with one VLAN tag (802.1Q, or 802.1ad without an inner tag).
    pub const L2_ETHER_VLAN: u32 = 0x0000_0006;
    /// Ethernet with two VLAN tags (QinQ).
    pub const L2_ETHER_QINQ: u32 = 0x0000_0007;
    /// Mask of the L3 field.
    pub const L3_MASK: u32 = 0x0000_00f0;
    /// IPv4 without options.
    pub const L3_IPV4: u32 = 0x0000_0010;
    /// IPv4 with options.
    pub const L3_IPV4_EXT: u32 = 0x0000_0030;
    /// IPv6 without extension headers.
    pub const L3_IPV6: u32 = 0x0000_0040;
    /// IPv6 with extension headers.
    pub const L3_IPV6_EXT: u32 = 0x0000_00e0;
    /// Mask of the L4 field.
    pub const L4_MASK: u32 = 0x0000_0f00;
    /// TCP.
    pub const L4_TCP: u32 = 0x0000_0100;
    /// UDP.
    pub const L4_UDP: u32 = 0x0000_0200;
    /// An IP fragment (IPv4 MF or offset set, or an IPv6 fragment header): no ports.
    pub const L4_FRAG: u32 = 0x0000_0300;
    /// ICMP (IPv4 protocol 1) or ICMPv6 (IPv6 next header 58).
    pub const L4_ICMP: u32 = 0x0000_0500;
    /// Any other L4 protocol (not a fragment).
    pub const L4_NONFRAG: u32 = 0x0000_0600;
    /// Mask of the tunnel field.
    pub const TUNNEL_MASK: u32 = 0x0000_f000;
    /// VXLAN (UDP destination port 4789, I flag set).
    pub const TUNNEL_VXLAN: u32 = 0x0000_3000;
    /// Mask of the inner L2 field.
    pub const INNER_L2_MASK: u32 = 0x000f_0000;
    /// Inner Ethernet.
    pub const INNER_L2_ETHER: u32 = 0x0001_0000;
    /// Inner Ethernet with one VLAN tag.
    pub const INNER_L2_ETHER_VLAN: u32 = 0x0002_0000;
    /// Inner Ethernet with two VLAN tags.
    pub const INNER_L2_ETHER_QINQ: u32 = 0x0003_0000;
    /// Mask of the inner L3 field.
    pub const INNER_L3_MASK: u32 = 0x00f0_0000;
    /// Inner IPv4 without options.
    pub const INNER_L3_IPV4: u32 = 0x0010_0000;
    /// Inner IPv4 with options.
    pub const INNER_L3_IPV4_EXT: u32 = 0x0020_0000;
    /// Inner IPv6 without extension headers.
    pub const INNER_L3_IPV6: u32 = 0x0030_0000;
    /// Inner IPv6 with extension headers.
    pub const INNER_L3_IPV6_EXT: u32 = 0x0050_0000;
    /// Mask of the inner L4 field.
    pub const INNER_L4_MASK: u32 = 0x0f00_0000;
    /// Inner TCP.
    pub const INNER_L4_TCP: u32 = 0x0100_0000;
    /// Inner UDP.
    pub const INNER_L4_UDP: u32 = 0x0200_0000;
    /// Inner fragment.
    pub const INNER_L4_FRAG: u32 = 0x0300_0000;
    /// Inner ICMP / ICMPv6.
    pub const INNER_L4_ICMP: u32 = 0x0500_0000;
    /// Inner other L4 protocol.
    pub const INNER_L4_NONFRAG: u32 = 0x0600_0000;
    /// Our own marker (DPDK has none): some layer was truncated or invalid; the bits above
    /// describe the valid prefix of the packet.
    pub const MALFORMED: u32 = 0x8000_0000;

    /// The outer L2 header length that the L2 bits of `pt` stand for: 14 for Ethernet and
    /// ARP, 18 for one VLAN tag, 22 for QinQ, 0 for none and for L2 values this classifier
    /// never writes. The classifier's `l2_len` is always `l2_len(ptype)`, so a buffer type can
    /// derive it instead of storing it (`RteMbuf` does).
    #[inline(always)]
    pub const fn l2_len(pt: u32) -> u8 {
        /// By L2 value: ETHER (1) and ETHER_ARP (3) → 14, VLAN (6) → 18, QINQ (7) → 22.
        const LEN: [u8; 16] = [0, 14, 0, 14, 0, 0, 18, 22, 0, 0, 0, 0, 0, 0, 0, 0];
        LEN[(pt & L2_MASK) as usize]
    }
}

/// UDP destination port that marks VXLAN.
pub const VXLAN_PORT: u16 = 4789;

/// Which kind of flow key a packet yielded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// No key (frame shorter than an Ethernet header); the hash is 0.
    #[default]
    None,
    /// No valid IP header: source and destination MAC in `src[..6]` and `dst[..6]`.
    Mac,
    /// IPv4: addresses in `src[..4]` and `dst[..4]`.
    Ipv4,
    /// IPv6: addresses in `src` and `dst`.
    Ipv6,
}

/// A flow key: the IPv4/IPv6 5-tuple (or the MAC pair for non-IP / malformed packets).
///
/// Unused bytes of `src`/`dst` and absent ports are zero, so keys compare with `==`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Address family of the key.
    pub kind: KeyKind,
    /// IP protocol / final IPv6 next header (0 for [`KeyKind::Mac`]).
    pub proto: u8,
    /// True when the ports are part of the key (TCP or UDP, not a fragment).
    pub has_ports: bool,
    /// Source port (0 unless `has_ports`).
    pub sport: u16,
    /// Destination port (0 unless `has_ports`).
    pub dport: u16,
    /// Source address (4, 16 or 6 bytes used, see [`KeyKind`]).
    pub src: [u8; 16],
    /// Destination address (4, 16 or 6 bytes used, see [`KeyKind`]).
    pub dst: [u8; 16],
}

/// Longest hash input: IPv6 addresses and ports.
pub const MAX_HASH_INPUT: usize = 36;

impl FlowKey {
    /// Writes the hash input (RSS order: source address, destination address, then source
    /// and destination port when present) into `out` and returns its length (0, 8, 12, 32
    /// or 36 bytes). Up to 4 bytes past the returned length may be overwritten with zeros (the
    /// absent ports); the rest of `out` is left untouched.
    #[inline(always)]
    pub fn hash_input(&self, out: &mut [u8; 48]) -> usize {
        // Fixed-size copies only, so nothing here becomes a call to memcpy.
        let mut ports = [0u8; 4];
        ports[..2].copy_from_slice(&self.sport.to_be_bytes());
        ports[2..].copy_from_slice(&self.dport.to_be_bytes());
        match self.kind {
            KeyKind::None => 0,
            KeyKind::Mac => {
                out[..6].copy_from_slice(&self.src[..6]);
                out[6..12].copy_from_slice(&self.dst[..6]);
                12
            }
            KeyKind::Ipv4 => {
                out[..4].copy_from_slice(&self.src[..4]);
                out[4..8].copy_from_slice(&self.dst[..4]);
                out[8..12].copy_from_slice(&ports);
                if self.has_ports {
                    12
                } else {
                    8
                }
            }
            KeyKind::Ipv6 => {
                out[..16].copy_from_slice(&self.src);
                out[16..32].copy_from_slice(&self.dst);
                out[32..36].copy_from_slice(&ports);
                if self.has_ports {
                    36
                } else {
                    32
                }
            }
        }
    }
}

/// What [`classify_burst`] found in one packet: packet type, hash and header lengths
/// (24 bytes, like what DPDK's classifier leaves in an mbuf).
///
/// The flow key itself is not stored: [`flow_key`](Self::flow_key) reads it back from the
/// packet at the offsets recorded here, for the packets that need it.
///
/// `repr(C)`, so the fast path can write a whole record as six 32-bit words
/// (`Classified::set_outer`) instead of field by field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Classified {
    /// Packet type bits ([`ptype`]).
    pub ptype: u32,
    /// Flow hash of the packet's flow key ([`HashKind`], see [`flow_key`](Self::flow_key)).
    pub hash: u32,
    /// Outer L2 header length (Ethernet plus VLAN tags); the L3 header starts here.
    pub l2_len: u16,
    /// Outer L3 header length (with IPv4 options / IPv6 extension headers).
    pub l3_len: u16,
    /// Outer L4 header length (TCP with options, UDP 8, ICMP 8, else 0).
    pub l4_len: u16,
    /// Inner L2 header length (VXLAN only); inner L2 starts at [`inner_offset`](Self::inner_offset).
    pub inner_l2_len: u16,
    /// Inner L3 header length (VXLAN only).
    pub inner_l3_len: u16,
    /// Inner L4 header length (VXLAN only).
    pub inner_l4_len: u16,
    /// The hash covers the inner key: a VXLAN packet classified with
    /// [`ClassifyConfig::hash_inner`] whose inner L3 header is valid.
    pub inner_key: bool,
}

// The layout `Classified::set_outer` writes: six 32-bit words, the u16 fields paired.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Classified>() == 24 && align_of::<Classified>() == 4);
    assert!(offset_of!(Classified, ptype) == 0 && offset_of!(Classified, hash) == 4);
    assert!(offset_of!(Classified, l2_len) == 8 && offset_of!(Classified, l3_len) == 10);
    assert!(offset_of!(Classified, l4_len) == 12 && offset_of!(Classified, inner_l2_len) == 14);
    assert!(offset_of!(Classified, inner_l3_len) == 16 && offset_of!(Classified, inner_l4_len) == 18);
    assert!(offset_of!(Classified, inner_key) == 20);
};

impl Classified {
    /// Overwrites `self` with a record without inner headers: `Classified { ptype, hash,
    /// l2_len, l3_len, l4_len, ..Classified::default() }`, written as six 32-bit words (the
    /// field-by-field write cost LLVM two overlapping stores for the zeros).
    #[inline(always)]
    pub(crate) fn set_outer(&mut self, ptype: u32, hash: u32, l2_len: u16, l3_len: u16, l4_len: u16) {
        // Two u16 fields as the 32-bit word that holds them in memory, the first one at the
        // lower address.
        #[inline(always)]
        fn pair(first: u16, second: u16) -> u32 {
            let (a, b) = (u32::from(first), u32::from(second));
            if cfg!(target_endian = "little") {
                a | b << 16
            } else {
                a << 16 | b
            }
        }
        let words: [u32; 6] = [ptype, hash, pair(l2_len, l3_len), pair(l4_len, 0), 0, 0];
        // `Classified` is `repr(C)`, 24 bytes with 4-byte alignment, and its fields lie where
        // the words above put them (asserted at compile time above); every field is an
        // integer except `inner_key`, whose byte (offset 20) gets 0 = `false`, and the
        // remaining 3 bytes are padding.
        // SAFETY: so `self` is valid and aligned for a `[u32; 6]` write of valid field values.
        unsafe { (self as *mut Self).cast::<[u32; 6]>().write(words) }
    }

    /// Offset of the outer L3 header.
    pub fn l3_offset(&self) -> usize {
        self.l2_len as usize
    }
    /// Offset of the outer L4 header.
    pub fn l4_offset(&self) -> usize {
        self.l2_len as usize + self.l3_len as usize
    }
    /// Offset of the inner Ethernet header of a VXLAN packet (after the 8-byte VXLAN header),
    /// `None` for other packets.
    pub fn inner_offset(&self) -> Option<usize> {
        (self.ptype & ptype::TUNNEL_MASK == ptype::TUNNEL_VXLAN).then(|| self.l4_offset() + self.l4_len as usize + 8)
    }
    /// True when [`ptype::MALFORMED`] is set.
    pub fn is_malformed(&self) -> bool {
        self.ptype & ptype::MALFORMED != 0
    }

    /// The flow key that [`hash`](Self::hash) was computed over, read from `frame` — which must
    /// be the frame this record was computed from — at the recorded offsets: the outer one, or
    /// the inner one when [`inner_key`](Self::inner_key) is set. Its
    /// [`hash_input`](FlowKey::hash_input) hashes to [`hash`](Self::hash).
    ///
    /// Costs about one IP header parse; with a different frame the result is meaningless but
    /// nothing panics.
    pub fn flow_key(&self, frame: &[u8]) -> FlowKey {
        scalar::key_of(self, frame)
    }
}

/// The Toeplitz key is shorter than the 40 bytes the longest input needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("RSS key has {0} bytes, at least 40 are needed")]
pub struct KeyTooShort(pub usize);

/// An RSS Toeplitz key with the lookup tables derived from it.
///
/// Inputs are at most [`MAX_HASH_INPUT`] (36) bytes, so only the first 40 key bytes matter;
/// longer keys (52 bytes on some NICs) are accepted and their tail is ignored.
#[derive(Clone)]
pub struct RssKey {
    key: [u8; 40],
    /// `nib[2p][n]` / `nib[2p+1][n]`: contribution of high / low nibble `n` of input byte `p`.
    nib: [[u32; 16]; 2 * MAX_HASH_INPUT],
    /// The same tables split into byte planes for the `pshufb`/`tbl` kernels:
    /// `planes[q][k][n] = (nib[q][n] >> 8k) as u8`.
    planes: [[[u8; 16]; 4]; 2 * MAX_HASH_INPUT],
}

impl std::fmt::Debug for RssKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RssKey").field("key", &self.key).finish_non_exhaustive()
    }
}

/// The well-known default RSS key (Microsoft's verification key, used by many NIC drivers).
pub const DEFAULT_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];

impl RssKey {
    /// Builds the tables for `key`.
    ///
    /// # Errors
    /// [`KeyTooShort`] when `key` has fewer than 40 bytes.
    pub fn new(key: &[u8]) -> Result<Self, KeyTooShort> {
        if key.len() < 40 {
            return Err(KeyTooShort(key.len()));
        }
        let mut k = [0u8; 48];
        k[..40].copy_from_slice(&key[..40]);
        // Key bits [i, i + 32), MSB first.
        let window = |i: usize| -> u32 {
            let b = i / 8;
            let w = u64::from_be_bytes([k[b], k[b + 1], k[b + 2], k[b + 3], k[b + 4], k[b + 5], k[b + 6], k[b + 7]]);
            (w >> (32 - i % 8)) as u32
        };
        let mut nib = [[0u32; 16]; 2 * MAX_HASH_INPUT];
        for (q, t) in nib.iter_mut().enumerate() {
            let first_bit = q * 4; // nibble q covers input bits [4q, 4q + 4)
            for (n, e) in t.iter_mut().enumerate() {
                for j in 0..4 {
                    if n & (8 >> j) != 0 {
                        *e ^= window(first_bit + j);
                    }
                }
            }
        }
        let mut planes = [[[0u8; 16]; 4]; 2 * MAX_HASH_INPUT];
        for (q, p) in planes.iter_mut().enumerate() {
            for (kk, plane) in p.iter_mut().enumerate() {
                for (n, e) in plane.iter_mut().enumerate() {
                    *e = (nib[q][n] >> (8 * kk)) as u8;
                }
            }
        }
        let mut key40 = [0u8; 40];
        key40.copy_from_slice(&key[..40]);
        Ok(Self { key: key40, nib, planes })
    }

    /// The first 40 key bytes.
    pub fn key(&self) -> &[u8; 40] {
        &self.key
    }

    /// Toeplitz hash of `input` (table-driven scalar code). Bytes past
    /// [`MAX_HASH_INPUT`] are ignored.
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        let mut h = 0u32;
        for (p, &b) in input.iter().take(MAX_HASH_INPUT).enumerate() {
            h ^= self.nib[2 * p][(b >> 4) as usize] ^ self.nib[2 * p + 1][(b & 15) as usize];
        }
        h
    }
}

impl Default for RssKey {
    fn default() -> Self {
        Self::new(&DEFAULT_RSS_KEY).unwrap_or_else(|_| unreachable!("default key has 40 bytes"))
    }
}

/// Which flow hash to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HashKind {
    /// RSS Toeplitz hash with the configured [`RssKey`] (what a NIC computes).
    #[default]
    Toeplitz,
    /// CRC32C (Castagnoli, reflected, initial value and final XOR `!0`) of the same input.
    Crc32c,
}

/// Classifier configuration, built once on the control path.
#[derive(Debug, Clone, Default)]
pub struct ClassifyConfig {
    /// The hash to compute.
    pub hash: HashKind,
    /// For VXLAN packets, hash (and report) the inner key instead of the outer one.
    pub hash_inner: bool,
    rss: Box<RssKey>,
}

impl ClassifyConfig {
    /// Toeplitz hashing with `key`.
    ///
    /// # Errors
    /// [`KeyTooShort`] when `key` has fewer than 40 bytes.
    pub fn toeplitz(key: &[u8]) -> Result<Self, KeyTooShort> {
        Ok(Self { hash: HashKind::Toeplitz, hash_inner: false, rss: Box::new(RssKey::new(key)?) })
    }

    /// CRC32C hashing.
    pub fn crc32c() -> Self {
        Self { hash: HashKind::Crc32c, ..Self::default() }
    }

    /// Sets [`hash_inner`](Self::hash_inner).
    pub fn with_hash_inner(mut self, inner: bool) -> Self {
        self.hash_inner = inner;
        self
    }

    /// The Toeplitz key and tables.
    pub fn rss_key(&self) -> &RssKey {
        &self.rss
    }
}

/// A classifier implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Impl {
    /// Portable scalar code.
    Scalar,
    /// x86_64 SSE4.2 `crc32` (Toeplitz by the table-driven code in the parse pass, which
    /// beats a 16-packet SSSE3 pass now that the hash input is read in place).
    Sse42,
    /// x86_64 AVX2: 32 packets per Toeplitz pass, SSE4.2 `crc32`; the parser is compiled
    /// with MOVBE (big-endian header fields loaded byte-swapped; every AVX2 CPU has it).
    Avx2,
    /// Reserved: no AVX-512 kernel exists (a 32-packet burst fills one AVX2 pass, so 64-lane
    /// vectors have nothing to add); never selected, never available.
    Avx512,
    /// aarch64 NEON `tbl` Toeplitz (16 packets per pass) and Armv8 CRC32 instructions.
    Neon,
}

impl Impl {
    /// Every variant, for iterating over the available ones.
    pub const ALL: [Impl; 5] = [Impl::Scalar, Impl::Sse42, Impl::Avx2, Impl::Avx512, Impl::Neon];

    /// True when this CPU can run this implementation.
    pub fn is_available(self) -> bool {
        match self {
            Impl::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Impl::Sse42 => {
                std::arch::is_x86_feature_detected!("sse4.2") && std::arch::is_x86_feature_detected!("ssse3")
            }
            #[cfg(target_arch = "x86_64")]
            Impl::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("sse4.2")
                    && std::arch::is_x86_feature_detected!("movbe")
            }
            #[cfg(target_arch = "aarch64")]
            Impl::Neon => std::arch::is_aarch64_feature_detected!("crc"),
            _ => false,
        }
    }

    /// Short name, for benchmarks and logs.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Scalar => "scalar",
            Impl::Sse42 => "sse4.2",
            Impl::Avx2 => "avx2",
            Impl::Avx512 => "avx512",
            Impl::Neon => "neon",
        }
    }
}

fn detect() -> Impl {
    [Impl::Avx2, Impl::Sse42, Impl::Neon].into_iter().find(|i| i.is_available()).unwrap_or(Impl::Scalar)
}

/// The implementation [`classify_burst`] uses on this CPU, detected once and cached.
pub fn implementation() -> Impl {
    static CHOSEN: OnceLock<Impl> = OnceLock::new();
    *CHOSEN.get_or_init(detect)
}

/// The requested implementation cannot run on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("classifier implementation {0:?} is not available on this CPU")]
pub struct Unavailable(pub Impl);

/// Packets per kernel pass (and per scratch matrix).
pub(crate) const CHUNK: usize = 32;

/// Scratch for one chunk: each packet's hash input, zero-padded to 48 bytes.
pub(crate) struct Rows {
    pub(crate) row: [[u8; 48]; CHUNK],
    pub(crate) len: [u8; CHUNK],
}

/// A hash kernel over one chunk of rows.
pub(crate) trait Kernel {
    /// Whether Toeplitz is hashed over whole chunks of rows by [`hash`](Self::hash) (the
    /// vector kernels) or one packet at a time in the parse pass.
    const BATCHED_TOEPLITZ: bool;

    /// CRC32C of `b` (`N` a multiple of 4, at most 48), one packet at a time (CRC needs no
    /// batching).
    ///
    /// # Safety
    /// The CPU must support the kernel's target features.
    unsafe fn crc32c<const N: usize>(b: &[u8; N]) -> u32;

    /// True when the 16 bytes of the frame's first 60 `h` from [`scalar::SCREEN_AT`] match
    /// `pat` ([`scalar::Pattern16`]): one vector compare (`ptest` on x86_64, a NEON compare and
    /// reduction on aarch64) in the vector kernels.
    ///
    /// # Safety
    /// The CPU must support the kernel's target features.
    unsafe fn matches16(h: &[u8; 60], pat: &scalar::Pattern16) -> bool;

    /// Whether the parse pass screens shapes with [`matches16`](Self::matches16) (see
    /// `scalar::Sink::SCREEN`).
    const SCREEN: bool;

    /// Computes the Toeplitz hash `out[i]` of each of the first `m` rows (only called when
    /// [`BATCHED_TOEPLITZ`](Self::BATCHED_TOEPLITZ)).
    ///
    /// # Safety
    /// The CPU must support the kernel's target features.
    unsafe fn hash(cfg: &ClassifyConfig, rows: &Rows, m: usize, max_len: usize, out: &mut [u32; CHUNK]);
}

/// CRC32C in the parse pass, with kernel `K`.
struct CrcNow<K>(std::marker::PhantomData<K>);

impl<K: Kernel> scalar::Sink for CrcNow<K> {
    const SCREEN: bool = K::SCREEN;

    #[inline(always)]
    fn input<const N: usize>(&mut self, b: &[u8; N]) -> u32 {
        // SAFETY: `CrcNow<K>` is only built by `run::<_, K>`, whose caller guarantees K's
        // features.
        unsafe { K::crc32c(b) }
    }

    #[inline(always)]
    fn matches(h: &[u8; 60], pat: &scalar::Pattern16) -> bool {
        // SAFETY: as in `input`.
        unsafe { K::matches16(h, pat) }
    }
}

/// Collects the chunk's hash inputs into zero-padded rows for a batched kernel. Used by
/// [`run_batched`], which is compiled for the baseline CPU (only the kernel has the vector
/// features), so it screens field by field (`scalar::Sink::SCREEN`).
struct RowSink<'a> {
    rows: &'a mut Rows,
    /// The row of the packet being parsed (set by [`parse_all`]).
    at: usize,
}

impl scalar::Sink for RowSink<'_> {
    #[inline(always)]
    fn at(&mut self, i: usize) {
        self.at = i;
    }

    #[inline(always)]
    fn input<const N: usize>(&mut self, b: &[u8; N]) -> u32 {
        let i = self.at % CHUNK;
        let row = &mut self.rows.row[i];
        *row = [0u8; 48];
        if let Some(r) = row.first_chunk_mut::<N>() {
            *r = *b;
        }
        self.rows.len[i] = N as u8;
        0
    }
}

/// Parses `items` into `out`, the hashes coming from `sink`.
#[inline(always)]
fn parse_all<T: Frame, S: scalar::Sink>(items: &[T], hash_inner: bool, out: &mut [Classified], sink: &mut S) {
    /// Packets prefetched ahead of the one being parsed.
    const AHEAD: usize = 4;
    let n = items.len().min(out.len());
    let (items, out) = (&items[..n], &mut out[..n]);
    // Two loops, so the main one prefetches unconditionally and the last packets (nothing
    // left to prefetch) pay no per-packet check for it. The main one takes two packets per
    // step, so its pointer steps, compare and branch are paid once per pair (with an odd
    // number of packets to prefetch for, the last of them goes to the tail loop, without its
    // prefetch). Chunk iterators zipped: slice indexing with `i + AHEAD + 1 < n` as the loop
    // condition made LLVM keep more bookkeeping per pair than it saved.
    let m = n.saturating_sub(AHEAD) & !1;
    let ahead = items.get(AHEAD..).unwrap_or(&[]);
    let (Some(head), Some(head_out)) = (items.get(..m), out.get_mut(..m)) else {
        return;
    };
    let pairs = head.chunks_exact(2).zip(ahead.chunks_exact(2)).zip(head_out.chunks_exact_mut(2));
    for (k, ((pair, next), o)) in pairs.enumerate() {
        let ([a, b], [next_a, next_b], [out_a, out_b]) = (pair, next, o) else {
            unreachable!("chunks of two");
        };
        crate::arch::prefetch(next_a.frame().as_ptr());
        crate::arch::prefetch(next_b.frame().as_ptr());
        sink.at(2 * k);
        scalar::parse_into(a.frame(), hash_inner, out_a, sink);
        sink.at(2 * k + 1);
        scalar::parse_into(b.frame(), hash_inner, out_b, sink);
    }
    // The last packets: nothing left to prefetch.
    let (Some(items), Some(out)) = (items.get(m..), out.get_mut(m..)) else {
        return;
    };
    for (k, (f, o)) in items.iter().zip(out).enumerate() {
        sink.at(m + k);
        scalar::parse_into(f.frame(), hash_inner, o, sink);
    }
}

/// Classifies `items` into `out`, as many as both hold.
///
/// # Safety
/// The CPU must support `K`'s target features.
#[inline(always)]
pub(crate) unsafe fn run<T: Frame, K: Kernel>(items: &[T], cfg: &ClassifyConfig, out: &mut [Classified]) {
    match cfg.hash {
        // Hashed right after parsing, straight from the packet bytes.
        HashKind::Crc32c => parse_all(items, cfg.hash_inner, out, &mut CrcNow::<K>(Default::default())),
        HashKind::Toeplitz if !K::BATCHED_TOEPLITZ => {
            parse_all(items, cfg.hash_inner, out, &mut scalar::ToeplitzNow::<K>(&cfg.rss, Default::default()))
        }
        // SAFETY: the caller guarantees K's features.
        HashKind::Toeplitz => unsafe { run_batched::<T, K>(items, cfg, out) },
    }
}

/// Toeplitz with a batched kernel: parse a chunk into rows, then hash the rows. Out of line,
/// so that the other paths of [`run`] do not set up its stack matrix.
///
/// # Safety
/// The CPU must support `K`'s target features.
#[inline(never)]
unsafe fn run_batched<T: Frame, K: Kernel>(items: &[T], cfg: &ClassifyConfig, out: &mut [Classified]) {
    let mut rows = Rows { row: [[0u8; 48]; CHUNK], len: [0u8; CHUNK] };
    let mut hashes = [0u32; CHUNK];
    for (items, out) in items.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
        parse_all(items, cfg.hash_inner, out, &mut RowSink { rows: &mut rows, at: 0 });
        let m = items.len().min(out.len());
        let max_len = rows.len[..m].iter().copied().max().unwrap_or(0) as usize;
        // SAFETY: the caller guarantees K's features.
        unsafe { K::hash(cfg, &rows, m, max_len, &mut hashes) };
        for (c, &h) in out.iter_mut().zip(&hashes) {
            c.hash = h;
        }
    }
}

/// The portable implementation, out of line like the vector ones (inlined into the caller it
/// made the dispatch in [`run_impl`] save and restore every register on each call).
#[inline(never)]
fn run_scalar<T: Frame>(items: &[T], cfg: &ClassifyConfig, out: &mut [Classified]) {
    // SAFETY: the scalar kernel needs no CPU feature.
    unsafe { run::<T, scalar::ScalarKernel>(items, cfg, out) }
}

fn run_impl<T: Frame>(
    imp: Impl,
    items: &[T],
    cfg: &ClassifyConfig,
    out: &mut [Classified],
) -> Result<usize, Unavailable> {
    let n = items.len().min(out.len());
    // The cached choice first: cheaper than the CPU feature tests on every burst. Either way
    // `imp.is_available()` held (`implementation()` only picks an available one).
    if imp != implementation() && !imp.is_available() {
        return Err(Unavailable(imp));
    }
    let (items, out) = (&items[..n], &mut out[..n]);
    match imp {
        Impl::Scalar => run_scalar(items, cfg, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: is_available() held (see above): SSE4.2 and SSSE3.
        Impl::Sse42 => unsafe { x86::run_sse42(items, cfg, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: is_available() held (see above): AVX2, SSE4.2 and MOVBE.
        Impl::Avx2 => unsafe { x86::run_avx2(items, cfg, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: is_available() held (see above): the CRC extension; NEON is baseline on aarch64.
        Impl::Neon => unsafe { neon::run_neon(items, cfg, out) },
        _ => return Err(Unavailable(imp)),
    }
    Ok(n)
}

/// Something classifiable: a byte slice or a packet buffer.
pub(crate) trait Frame {
    /// The frame's bytes.
    fn frame(&self) -> &[u8];
}

impl Frame for &[u8] {
    #[inline(always)]
    fn frame(&self) -> &[u8] {
        self
    }
}

impl<B: PacketBuf> Frame for B {
    #[inline(always)]
    fn frame(&self) -> &[u8] {
        self.data()
    }
}

fn write_meta<B: PacketBuf>(pkts: &mut [B], out: &[Classified]) {
    for (p, c) in pkts.iter_mut().zip(out) {
        p.set_class(c.ptype, len_u8(c.l2_len), c.l3_len, len_u8(c.l4_len));
        p.set_hash(c.hash);
    }
}

/// How much of the classifier's work a processing stage needs (see
/// `Forward::classify_level` in [`crate::lcore`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Level {
    /// Nothing: the metadata is left as the port wrote it.
    None,
    /// The L2 layer alone ([`classify_burst_l2`]): the L2 packet type bits (Ethernet, VLAN,
    /// QinQ, ARP, or [`ptype::MALFORMED`] for a frame shorter than an Ethernet header) and
    /// the L2 length; L3/L4 lengths 0, the hash left as the port wrote it. For stages that
    /// only need to know the frame is Ethernet (l2fwd).
    L2,
    /// The L2 and L3 layers ([`classify_burst_l3`]): the packet type's L2 and L3 bits and the
    /// L2 and L3 lengths as the full classifier reports them, no L4 or tunnel bits, L4 length
    /// 0, [`ptype::MALFORMED`] only when no L3 header is valid and the L2 or L3 header is cut
    /// short or invalid; the hash left as the port wrote it. For stages that route on the L3
    /// header (l3fwd), as DPDK l3fwd's `--parse-ptype` callback.
    L3,
    /// Packet type and header lengths, no flow hash ([`classify_burst_lengths`]): the parse
    /// pass alone. The metadata's hash is left as the port wrote it.
    Lengths,
    /// Packet type, header lengths and flow hash ([`classify_burst`]).
    #[default]
    Full,
}

/// A hash sink that hashes nothing: the parse pass alone, for [`Level::Lengths`].
struct NoHash;

impl scalar::Sink for NoHash {
    #[inline(always)]
    fn input<const N: usize>(&mut self, _b: &[u8; N]) -> u32 {
        0
    }
}

/// The parse pass without a hash, out of line like the other implementations.
#[inline(never)]
fn run_lengths<T: Frame>(items: &[T], out: &mut [Classified]) {
    parse_all(items, false, out, &mut NoHash)
}

/// Classifies a burst for [`Level::Lengths`]: fills `out[..n]` (hash 0) and writes ptype,
/// l2_len, l3_len and l4_len into each packet's metadata, leaving its hash alone. The same
/// parser as [`classify_burst`] (scalar on every CPU; the implementations differ only in
/// hashing). Returns `n = min(pkts.len(), out.len())`; packets past `n` are untouched.
pub fn classify_burst_lengths<B: PacketBuf>(pkts: &mut [B], out: &mut [Classified]) -> usize {
    let n = pkts.len().min(out.len());
    lengths_into_meta(&mut pkts[..n], &mut out[..n]);
    n
}

/// A header length as the metadata's `u8` (saturating; outer L2 and L4 headers are far
/// shorter).
#[inline(always)]
fn len_u8(v: u16) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

/// Runs `f` on each packet (with its index) in order, the packet four places further
/// prefetched: a main loop that prefetches without a test, then the last four packets, which
/// have nothing left to prefetch. The per-packet loop of the metadata passes.
#[inline(always)]
fn each_prefetched<B: PacketBuf>(pkts: &mut [B], mut f: impl FnMut(usize, &mut B)) {
    /// Packets prefetched ahead of the one being parsed.
    const AHEAD: usize = 4;
    let m = pkts.len().saturating_sub(AHEAD);
    for i in 0..m {
        if let Some(next) = pkts.get(i + AHEAD) {
            next.prefetch();
        }
        if let Some(p) = pkts.get_mut(i) {
            f(i, p);
        }
    }
    for (i, p) in pkts.iter_mut().enumerate().skip(m) {
        f(i, p);
    }
}

/// The parse pass of [`classify_burst_lengths`], each record written to the packet's
/// metadata as soon as it is parsed (one loop, not a parse loop then a copy loop).
#[inline(never)]
fn lengths_into_meta<B: PacketBuf>(pkts: &mut [B], out: &mut [Classified]) {
    let n = pkts.len().min(out.len());
    let (pkts, out) = (&mut pkts[..n], &mut out[..n]);
    each_prefetched(pkts, |i, p| {
        if let Some(c) = out.get_mut(i) {
            scalar::parse_into(p.data(), false, c, &mut NoHash);
            p.set_class(c.ptype, len_u8(c.l2_len), c.l3_len, len_u8(c.l4_len));
        }
    });
}

/// What [`Level::L3`] keeps of a [`Level::Lengths`] record: the L2 and L3 type bits and
/// lengths, and [`ptype::MALFORMED`] only when no L3 header was valid (with one, the fault
/// was deeper).
#[inline(always)]
fn l3_part(c: &Classified) -> Classified {
    let l3 = c.ptype & ptype::L3_MASK;
    let bad = if l3 == 0 { c.ptype & ptype::MALFORMED } else { 0 };
    let mut r = Classified::default();
    r.set_outer(c.ptype & ptype::L2_MASK | l3 | bad, 0, c.l2_len, c.l3_len, 0);
    r
}

/// Parses one frame for [`Level::L3`]: packet type, L2 and L3 lengths. Untagged IPv4
/// without options whose total length fits the frame takes a few compares.
#[inline(always)]
fn parse_l3(d: &[u8]) -> (u32, u16, u16) {
    if let Some(h) = d.first_chunk::<34>() {
        // EtherType 0x0800 with version 4 and IHL 5 (one masked 32-bit compare), and 20 <=
        // total length <= len - 14: the general parser's IPv4 header checks for this shape.
        let w = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        let tot = usize::from(u16::from_be_bytes([h[16], h[17]]));
        if w & 0x00ff_ffff == 0x0045_0008 && tot.wrapping_sub(20) <= d.len() - 34 {
            return (ptype::L2_ETHER | ptype::L3_IPV4, 14, 20);
        }
    }
    parse_l3_general(d)
}

/// Every other frame: the full parse cut down to L3, out of line so the burst loop stays small.
#[inline(never)]
fn parse_l3_general(d: &[u8]) -> (u32, u16, u16) {
    let mut c = Classified::default();
    scalar::parse_into(d, false, &mut c, &mut NoHash);
    let r = l3_part(&c);
    (r.ptype, r.l2_len, r.l3_len)
}

/// Classifies a burst for [`Level::L3`]: writes the packet type and the L2/L3 lengths (L4
/// length 0) into each packet's metadata, leaving its hash alone; no records, as for
/// [`Level::L2`]. Returns the packets classified.
pub fn classify_burst_l3<B: PacketBuf>(pkts: &mut [B]) -> usize {
    l3_into_meta(pkts);
    pkts.len()
}

/// The pass of [`classify_burst_l3`], out of line like [`lengths_into_meta`].
#[inline(never)]
fn l3_into_meta<B: PacketBuf>(pkts: &mut [B]) {
    each_prefetched(pkts, |_, p| {
        let (pt, l2, l3) = parse_l3(p.data());
        p.set_class(pt, len_u8(l2), l3, 0);
    });
}

/// Classifies one frame for [`Level::L3`] (the pass of [`classify_burst_l3`], for code that
/// looks at one frame at a time): a record with hash 0 and L4 length 0.
pub fn classify_one_l3(frame: &[u8]) -> Classified {
    let (pt, l2, l3) = parse_l3(frame);
    let mut c = Classified::default();
    c.set_outer(pt, 0, l2, l3, 0);
    c
}

/// Classifies a burst for [`Level::L2`]: writes the L2 packet type bits and the L2 length
/// into each packet's metadata (L3/L4 lengths 0, the hash left alone). Returns the packets
/// classified.
pub fn classify_burst_l2<B: PacketBuf>(pkts: &mut [B]) -> usize {
    for p in pkts.iter_mut() {
        let (pt, l2) = scalar::parse_l2_only(p.data());
        p.set_class(pt, len_u8(l2), 0, 0);
    }
    pkts.len()
}

/// Classifies a burst at `level` (nothing for [`Level::None`]) with the [`implementation`]
/// chosen for this CPU; returns the packets classified.
#[inline]
pub fn classify_burst_level<B: PacketBuf>(
    level: Level,
    pkts: &mut [B],
    cfg: &ClassifyConfig,
    out: &mut [Classified],
) -> usize {
    match level {
        Level::None => 0,
        Level::L2 => classify_burst_l2(pkts),
        Level::L3 => classify_burst_l3(pkts),
        Level::Lengths => classify_burst_lengths(pkts, out),
        Level::Full => classify_burst(pkts, cfg, out),
    }
}

/// Classifies a burst with the [`implementation`] chosen for this CPU: fills
/// `out[..n]` and writes ptype, hash, l2_len, l3_len and l4_len into each packet's metadata.
/// Returns `n = min(pkts.len(), out.len())`; packets past `n` are untouched.
pub fn classify_burst<B: PacketBuf>(pkts: &mut [B], cfg: &ClassifyConfig, out: &mut [Classified]) -> usize {
    classify_burst_with(implementation(), pkts, cfg, out).unwrap_or(0)
}

/// [`classify_burst`] with an explicit implementation (benchmarks, equivalence tests).
///
/// # Errors
/// [`Unavailable`] when this CPU cannot run `imp` (nothing is written).
pub fn classify_burst_with<B: PacketBuf>(
    imp: Impl,
    pkts: &mut [B],
    cfg: &ClassifyConfig,
    out: &mut [Classified],
) -> Result<usize, Unavailable> {
    let ro: &[B] = pkts;
    let n = run_impl(imp, ro, cfg, out)?;
    write_meta(&mut pkts[..n], &out[..n]);
    Ok(n)
}

/// Classifies plain byte slices (no metadata to write) with an explicit implementation.
///
/// # Errors
/// [`Unavailable`] when this CPU cannot run `imp`.
pub fn classify_slices_with(
    imp: Impl,
    frames: &[&[u8]],
    cfg: &ClassifyConfig,
    out: &mut [Classified],
) -> Result<usize, Unavailable> {
    run_impl(imp, frames, cfg, out)
}

/// Classifies one frame for [`Level::Lengths`]: packet type and header lengths, hash 0 (the
/// parse pass of [`classify_burst_lengths`], for code that looks at one frame at a time).
pub fn classify_one_lengths(frame: &[u8]) -> Classified {
    let mut out = [Classified::default()];
    run_lengths(&[frame], &mut out);
    out[0]
}

/// Classifies one frame with the [`implementation`] chosen for this CPU.
pub fn classify_one(frame: &[u8], cfg: &ClassifyConfig) -> Classified {
    classify_one_with(implementation(), frame, cfg).unwrap_or_default()
}

/// Classifies one frame with an explicit implementation.
///
/// # Errors
/// [`Unavailable`] when this CPU cannot run `imp`.
pub fn classify_one_with(imp: Impl, frame: &[u8], cfg: &ClassifyConfig) -> Result<Classified, Unavailable> {
    let mut out = [Classified::default()];
    run_impl(imp, &[frame], cfg, &mut out)?;
    Ok(out[0])
}

#[cfg(test)]
mod level_tests {
    use super::*;
    use proptest::prelude::*;

    /// Frames of random bytes behind EtherTypes and tags the parser knows.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        let et = prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x9100, 0x1234]);
        (prop::collection::vec(any::<u8>(), 0..80), et.clone(), et, 0usize..3).prop_map(|(mut f, a, b, tags)| {
            if f.len() >= 14 {
                f[12..14].copy_from_slice(&a.to_be_bytes());
            }
            if tags > 0 && f.len() >= 18 {
                f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
                f[16..18].copy_from_slice(&b.to_be_bytes());
            }
            f
        })
    }

    /// Untagged IPv4 frames around the edges of the L3 fast path: version/IHL 0x45 or a
    /// neighbour, total length near 20 and near what the frame holds.
    fn v4_frame() -> impl Strategy<Value = Vec<u8>> {
        let vihl = prop::sample::select(vec![0x45u8, 0x45, 0x46, 0x44, 0x55, 0x4f]);
        (prop::collection::vec(any::<u8>(), 30..80), vihl, 0usize..4, 0u16..4).prop_map(|(mut f, vihl, how, d)| {
            f[12..15].copy_from_slice(&[0x08, 0x00, vihl]);
            let room = f.len() as u16 - 14;
            let tot = match how {
                0 => room.saturating_sub(d),
                1 => room + d,
                2 => 18 + d,
                _ => u16::from_be_bytes([f[16], f[17]]),
            };
            f[16..18].copy_from_slice(&tot.to_be_bytes());
            f
        })
    }

    /// The frames in mbufs of a fresh heap-backed pool (returned too: it outlives them), each
    /// with the hash a port would have written (0xfeed), which the levels must leave alone.
    fn hashed_mbufs(name: &str, frames: &[Vec<u8>]) -> (crate::mbuf::Mempool, Vec<crate::mbuf::Mbuf>) {
        use crate::mbuf::{Mbuf, MemBacking, Mempool, MempoolConfig};
        let mut c = MempoolConfig::new(name, 64);
        c.backing = MemBacking::Normal;
        let pool = Mempool::new(c).unwrap();
        let pkts = frames
            .iter()
            .map(|f| {
                let mut m = Mbuf::from_slice(&pool, f).unwrap();
                m.set_hash(0xfeed);
                m
            })
            .collect();
        (pool, pkts)
    }

    proptest! {
        /// The L2 level reports the full classifier's L2 bits and L2 length, and MALFORMED for
        /// frames shorter than Ethernet.
        #[test]
        fn l2_level_agrees_with_the_full_parse(f in frame()) {
            let (pt, l2) = scalar::parse_l2_only(&f);
            let full = classify_one_lengths(&f);
            prop_assert_eq!(pt & ptype::L2_MASK, full.ptype & ptype::L2_MASK);
            prop_assert_eq!(l2, full.l2_len);
            prop_assert_eq!(u16::from(ptype::l2_len(pt)), l2);
            if f.len() < 14 {
                prop_assert_eq!(pt, ptype::MALFORMED);
            }
            if pt & ptype::MALFORMED != 0 {
                prop_assert!(full.is_malformed());
            }
        }

        /// The `L3` level is the full classifier's record cut down to L3, fast path or not,
        /// and writes it into the metadata leaving the hash alone.
        #[test]
        fn l3_level_matches_the_full_parse_cut_to_l3(
            frames in prop::collection::vec(prop_oneof![frame(), v4_frame()], 1..40)
        ) {
            let (_pool, mut pkts) = hashed_mbufs("l3-level", &frames);
            prop_assert_eq!(classify_burst_l3(&mut pkts), frames.len());
            for (p, f) in pkts.iter().zip(&frames) {
                let full = classify_one_lengths(f);
                let want = l3_part(&full);
                prop_assert_eq!(classify_one_l3(f), want, "{:02x?}", f);
                prop_assert_eq!(want.ptype & !(ptype::L2_MASK | ptype::L3_MASK | ptype::MALFORMED), 0);
                let m = p.meta();
                prop_assert_eq!((m.ptype, m.hash), (want.ptype, 0xfeed));
                prop_assert_eq!((u16::from(m.l2_len), m.l3_len, m.l4_len), (want.l2_len, want.l3_len, 0));
            }
        }

        /// The `Lengths` level writes the full classifier's packet type and lengths into
        /// the metadata, and leaves the hash the port wrote.
        #[test]
        fn lengths_level_matches_the_full_parse(frames in prop::collection::vec(frame(), 1..40)) {
            let (_pool, mut pkts) = hashed_mbufs("lengths-level", &frames);
            let mut out = vec![Classified::default(); pkts.len()];
            prop_assert_eq!(classify_burst_lengths(&mut pkts, &mut out), frames.len());
            let cfg = ClassifyConfig::default();
            for ((p, f), o) in pkts.iter().zip(&frames).zip(&out) {
                let full = classify_one(f, &cfg);
                prop_assert_eq!(*o, Classified { hash: 0, ..full });
                prop_assert_eq!(u16::from(ptype::l2_len(full.ptype)), full.l2_len);
                let m = p.meta();
                prop_assert_eq!((m.ptype, m.hash), (full.ptype, 0xfeed));
                prop_assert_eq!((u16::from(m.l2_len), m.l3_len, u16::from(m.l4_len)), (full.l2_len, full.l3_len, full.l4_len));
            }
        }
    }
}
