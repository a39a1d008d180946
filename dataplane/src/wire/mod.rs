//! Zero-copy, checked-once views of packet headers, and plain `Repr` structs to parse and
//! emit them.
//!
//! Each protocol lives in its own file and offers the same three layers:
//!
//! - a view `XxxPacket<T: AsRef<[u8]>>` over a byte buffer. [`new_unchecked`] wraps any
//!   buffer; `new_checked` validates the length and the structural fields once (header length
//!   fields, version, total length against the buffer) and returns a small `Copy` [`Error`]
//!   otherwise. After `new_checked` succeeds, no getter and no `payload()` can panic. Setters
//!   exist when `T: AsMut<[u8]>`; byte offsets live in a private `mod field` per file.
//! - a `XxxRepr`: the header as plain values, with `parse` (from a checked view), `buffer_len`
//!   (the bytes `emit` writes) and `emit` (into a view; returns [`Error::Truncated`] rather than
//!   panicking when the buffer is too short).
//! - open enums for protocol numbers: a value this module has no name for is a value
//!   (`EtherType::Unknown(0x88b5)`), never an error.
//!
//! Checksums are never verified implicitly (a data plane may have them offloaded): views offer
//! `verify_checksum`/`fill_checksum`, and [`checksum`] has the RFC 1071 sum, the
//! pseudo-headers and the RFC 1624 incremental updates.
//!
//! ```
//! use dataplane::wire::{EthernetFrame, EtherType, Ipv4Packet, IpProtocol, UdpPacket};
//! #[rustfmt::skip]
//! let frame: [u8; 42] = [
//!     0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet, IPv4
//!     0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0,                 // IPv4, UDP
//!     10, 0, 0, 1, 10, 0, 0, 2,                                   // 10.0.0.1 -> 10.0.0.2
//!     0x30, 0x39, 0, 53, 0, 8, 0, 0,                              // UDP 12345 -> 53
//! ];
//! let eth = EthernetFrame::new_checked(&frame[..])?;
//! assert_eq!(eth.ethertype(), EtherType::Ipv4);
//! let ip = Ipv4Packet::new_checked(eth.payload())?;
//! assert_eq!(ip.next_header(), IpProtocol::Udp);
//! let udp = UdpPacket::new_checked(ip.payload())?;
//! assert_eq!(udp.dst_port(), 53);
//! # Ok::<(), dataplane::wire::Error>(())
//! ```
//!
//! [`new_unchecked`]: EthernetFrame::new_unchecked

pub mod checksum;

mod arp;
mod build;
mod ethernet;
mod icmpv4;
mod icmpv6;
mod ip;
mod ipv4;
mod ipv6;
mod ipv6ext;
mod tcp;
mod udp;
mod vlan;
mod vxlan;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use build::Udp4FrameRepr;
pub use ethernet::{AddrParseError, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, MacAddr};
pub use icmpv4::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr, NdiscNeighborFlags, NdiscOption, NdiscOptions};
pub use ip::{IpProtocol, RawOptions};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use ipv6ext::{
    walk_ext_headers, Ipv6ExtHeader, Ipv6ExtHeaderRepr, Ipv6FragmentHeader, Ipv6FragmentRepr, Ipv6Upper,
    MAX_EXT_HEADERS,
};
pub use tcp::{TcpFlags, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};
pub use vlan::{walk_vlan_tags, L2Info, VlanHeader, VlanRepr, MAX_VLAN_TAGS};
pub use vxlan::{VxlanPacket, VxlanRepr, VXLAN_PORT};

/// Why a buffer is not a valid packet of the expected kind, or why a `Repr` cannot be emitted.
///
/// Small and `Copy` so that the data path can turn it into a drop reason without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field says it is.
    #[error("buffer truncated")]
    Truncated,
    /// The version field is not the one this view parses (IPv4 version != 4, IPv6 != 6).
    #[error("wrong IP version")]
    BadVersion,
    /// Header fields contradict each other (e.g. IPv4 IHL < 5, UDP length < 8, TCP data
    /// offset < 5, an NDP option of length 0, hop-by-hop options not first).
    #[error("malformed header")]
    Malformed,
    /// More stacked headers than the walker's bound ([`MAX_VLAN_TAGS`], [`MAX_EXT_HEADERS`]).
    #[error("too many stacked headers")]
    TooManyHeaders,
    /// Well-formed, but not a kind this `Repr` represents (e.g. ARP for a non-Ethernet/IPv4
    /// hardware/protocol pair).
    #[error("unsupported packet kind")]
    Unsupported,
    /// A `Repr` value does not fit its wire field (e.g. a payload longer than 65535 bytes, a
    /// VNI wider than 24 bits, options longer than 40 bytes).
    #[error("value does not fit the header field")]
    ValueTooLarge,
}

/// Declares an open enum over an integer: named variants plus `Unknown(raw)`, with `From`
/// both ways. A raw value that has a name always converts to the named variant.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value with no name here. Constructing `Unknown` of a named value is allowed
            /// but compares unequal to the named variant; convert with `From` instead.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            #[inline]
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            #[inline]
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use open_enum;

/// Reads a big-endian `u16` from the first two bytes of `b`.
#[inline(always)]
pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Reads a big-endian `u32` from the first four bytes of `b`.
#[inline(always)]
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Writes `v` big-endian into the first two bytes of `b`.
#[inline(always)]
pub(crate) fn put16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

/// Writes `v` big-endian into the first four bytes of `b`.
#[inline(always)]
pub(crate) fn put32(b: &mut [u8], v: u32) {
    b[..4].copy_from_slice(&v.to_be_bytes());
}

/// Returns `Err(Truncated)` unless `len >= need`.
#[inline(always)]
pub(crate) fn need(len: usize, need: usize) -> Result<(), Error> {
    if len >= need {
        Ok(())
    } else {
        Err(Error::Truncated)
    }
}

#[cfg(test)]
pub(crate) mod testutil;
